namespace GflTrainer.Coco;

/// <summary>A detection confusion matrix with a background row and column, in the layout of mmdetection's
/// <c>tools/analysis_tools/confusion_matrix.py</c>: rows are the ground-truth class, columns the predicted class, the
/// last row (background) counts detections that match no ground truth (false positives) and the last column ground
/// truths that no detection found (missed). Unlike mmdetection's tool, matching is one-to-one, so every ground truth
/// and every kept detection is counted exactly once: row k sums to the class's ground-truth count.</summary>
/// <param name="ScoreThreshold">detections below it are not counted (mmdetection's default 0.3).</param>
/// <param name="IouThreshold">a detection and a ground truth match at IoU &gt;= it (mmdetection's 0.5).</param>
/// <param name="Counts">(K+1) x (K+1), [true, predicted]; index K is background.</param>
public sealed record ConfusionMatrix(IReadOnlyList<CocoCategory> Categories, double ScoreThreshold, double IouThreshold,
    long[,] Counts, long IgnoredOnCrowd)
{
    public int Size => Categories.Count + 1;

    /// <summary>Each row divided by its sum (the share of a class's ground truths found as each class, or of the false
    /// positives per predicted class in the background row); 0 for an empty row.</summary>
    public double[,] RowNormalised()
    {
        var n = new double[Size, Size];
        for (int r = 0; r < Size; r++)
        {
            long sum = 0;
            for (int c = 0; c < Size; c++) sum += Counts[r, c];
            for (int c = 0; c < Size; c++) n[r, c] = sum == 0 ? 0 : (double)Counts[r, c] / sum;
        }
        return n;
    }

    /// <summary>Matches per image, detections by descending score (ties in list order, as COCOeval sorts). A detection
    /// takes the unmatched ground truth of its own class with the highest IoU &gt;= the threshold; failing that, the
    /// unmatched ground truth of any class with the highest IoU (a confusion). A detection that matches nothing but
    /// lies inside a crowd region (intersection over its own area &gt;= the threshold, COCO's crowd rule) is ignored,
    /// not a false positive, as in COCOeval.</summary>
    public static ConfusionMatrix Compute(CocoGroundTruth groundTruth, IReadOnlyList<CocoDetection> detections,
        double scoreThreshold = 0.3, double iouThreshold = 0.5)
    {
        var categories = groundTruth.Categories;
        int k = categories.Count;
        var index = new Dictionary<long, int>();
        for (int i = 0; i < k; i++) index[categories[i].Id] = i;
        var counts = new long[k + 1, k + 1];
        var gtByImage = groundTruth.Annotations.Where(a => index.ContainsKey(a.CategoryId)).ToLookup(a => a.ImageId);
        var dtByImage = detections
            .Select((d, order) => (d, order))
            .Where(x => x.d.Score >= scoreThreshold && index.ContainsKey(x.d.CategoryId))
            .ToLookup(x => x.d.ImageId);
        long ignored = 0;
        foreach (var imageId in groundTruth.ImageIds)
        {
            var gts = gtByImage[imageId].Where(g => !g.IsCrowd).ToArray();
            var crowds = gtByImage[imageId].Where(g => g.IsCrowd).ToArray();
            var matched = new bool[gts.Length];
            foreach (var (d, _) in dtByImage[imageId].OrderByDescending(x => x.d.Score).ThenBy(x => x.order))
            {
                int predicted = index[d.CategoryId];
                int best = -1, bestOther = -1;
                double bestIou = -1, bestOtherIou = -1;   // first of equal IoUs wins
                for (int g = 0; g < gts.Length; g++)
                {
                    if (matched[g]) continue;
                    var gt = gts[g];
                    double iou = CocoBoxIou.Compute(d.X, d.Y, d.Width, d.Height, gt.X, gt.Y, gt.Width, gt.Height, crowd: false);
                    if (iou < iouThreshold) continue;
                    if (gt.CategoryId == d.CategoryId) { if (iou > bestIou) { bestIou = iou; best = g; } }
                    else if (iou > bestOtherIou) { bestOtherIou = iou; bestOther = g; }
                }
                if (best < 0) best = bestOther;
                if (best >= 0)
                {
                    matched[best] = true;
                    counts[index[gts[best].CategoryId], predicted]++;
                }
                else if (crowds.Any(c => CocoBoxIou.Compute(d.X, d.Y, d.Width, d.Height, c.X, c.Y, c.Width, c.Height, crowd: true) >= iouThreshold))
                    ignored++;
                else
                    counts[k, predicted]++;   // false positive
            }
            for (int g = 0; g < gts.Length; g++)
                if (!matched[g]) counts[index[gts[g].CategoryId], k]++;   // missed
        }
        return new ConfusionMatrix(categories, scoreThreshold, iouThreshold, counts, ignored);
    }
}
