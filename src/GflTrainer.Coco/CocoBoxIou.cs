namespace GflTrainer.Coco;

/// <summary>IoU of xywh boxes exactly as pycocotools' C <c>bbIou</c> computes it, in doubles and in the same
/// operation order (results on a threshold decide matches).</summary>
internal static class CocoBoxIou
{
    /// <summary>w = min(x1+w1, x2+w2) - max(x1, x2), no overlap when w &lt;= 0 (same for h); union = (da + ga) - inter,
    /// with areas from the boxes (not the <c>area</c> field). Against a crowd region the union is the detection's
    /// area alone: the fraction of the detection inside the crowd.</summary>
    public static double Compute(double dx, double dy, double dw, double dh,
        double gx, double gy, double gw, double gh, bool crowd)
    {
        double w = Math.Min(dw + dx, gw + gx) - Math.Max(dx, gx);
        if (w <= 0) return 0;
        double h = Math.Min(dh + dy, gh + gy) - Math.Max(dy, gy);
        if (h <= 0) return 0;
        double inter = w * h;
        double da = dw * dh;
        double union = crowd ? da : da + gw * gh - inter;
        return inter / union;
    }
}
