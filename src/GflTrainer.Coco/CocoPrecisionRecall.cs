namespace GflTrainer.Coco;

/// <summary>One category's precision-recall curves: interpolated precision at COCO's 101 recall thresholds, over all
/// areas and the last maxDets (100), as <c>eval['precision'][t, :, k, 0, -1]</c>.</summary>
/// <param name="AtIou50">precision at IoU 0.5; null when the category has no ground truth (pycocotools' -1).</param>
/// <param name="MeanIou50To95">the mean of the ten IoU thresholds' curves (0.5:0.05:0.95), point by point.</param>
/// <param name="AP50">the mean of <paramref name="AtIou50"/> (the category's AP50); -1 without ground truth.</param>
/// <param name="AP">the mean over all thresholds and recalls (the category's AP, as the classwise table).</param>
/// <param name="Recall50">final recall at IoU 0.5 (<c>eval['recall']</c>): where the curve stops.</param>
public sealed record CocoCategoryCurve(long CategoryId, string Name, double[]? AtIou50, double[]? MeanIou50To95,
    double AP50, double AP, double Recall50);

/// <summary>Per-category precision-recall curves read from a COCOeval accumulation, for plots and for users comparing
/// runs class by class. A point is 0 beyond the highest recall reached (pycocotools fills the curve so), which is why
/// the curves drop to 0 at the right instead of ending in the air.</summary>
public sealed class CocoPrecisionRecall
{
    public required IReadOnlyList<double> RecallThresholds { get; init; }
    public required IReadOnlyList<CocoCategoryCurve> Categories { get; init; }

    /// <summary>The mean curve over categories with ground truth (what AP50 and AP average).</summary>
    public required double[] MeanAtIou50 { get; init; }
    public required double[] MeanIou50To95 { get; init; }

    public static CocoPrecisionRecall From(CocoAccumulation accumulation)
    {
        var p = accumulation.Parameters;
        int r = p.RecallThresholds.Count, t = p.IouThresholds.Count, m = p.MaxDetections.Count - 1;
        int all = IndexOf(p.AreaRanges.Select(a => a.Label).ToList(), "all");
        int t50 = IndexOf(p.IouThresholds, 0.5);
        var curves = new List<CocoCategoryCurve>();
        for (int k = 0; k < accumulation.Categories.Count; k++)
        {
            var cat = accumulation.Categories[k];
            if (accumulation.Precision(t50, 0, k, all, m) <= -1)   // no ground truth: -1 everywhere
            {
                curves.Add(new CocoCategoryCurve(cat.Id, cat.Name, null, null, -1, -1, -1));
                continue;
            }
            var at50 = new double[r];
            var mean = new double[r];
            for (int i = 0; i < r; i++)
            {
                at50[i] = accumulation.Precision(t50, i, k, all, m);
                double sum = 0;
                for (int j = 0; j < t; j++) sum += accumulation.Precision(j, i, k, all, m);
                mean[i] = sum / t;
            }
            curves.Add(new CocoCategoryCurve(cat.Id, cat.Name, at50, mean, at50.Average(), mean.Average(),
                accumulation.Recall(t50, k, all, m)));
        }
        var present = curves.Where(c => c.AtIou50 is not null).ToList();
        double[] MeanOf(Func<CocoCategoryCurve, double[]> pick) => Enumerable.Range(0, r)
            .Select(i => present.Count == 0 ? 0 : present.Average(c => pick(c)[i])).ToArray();
        return new CocoPrecisionRecall
        {
            RecallThresholds = p.RecallThresholds,
            Categories = curves,
            MeanAtIou50 = MeanOf(c => c.AtIou50!),
            MeanIou50To95 = MeanOf(c => c.MeanIou50To95!),
        };
    }

    static int IndexOf<T>(IReadOnlyList<T> items, T wanted)
    {
        for (int i = 0; i < items.Count; i++) if (EqualityComparer<T>.Default.Equals(items[i], wanted)) return i;
        throw new InvalidOperationException($"the evaluation parameters have no {wanted}");
    }
}
