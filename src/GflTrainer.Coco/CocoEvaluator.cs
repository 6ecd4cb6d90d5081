using System.Runtime.CompilerServices;

namespace GflTrainer.Coco;

/// <summary>COCO bbox evaluation equal to pycocotools' <c>COCOeval</c> (2.0.x): <see cref="EvaluateImages"/>
/// (<c>evaluate()</c>), <see cref="Accumulate"/> (<c>accumulate()</c>) and <see cref="CocoAccumulation.Summarize"/>
/// (<c>summarize()</c>). Work is spread over (category, image) cells and categories with results placed by index,
/// so the output does not depend on the thread count.</summary>
public sealed class CocoEvaluator
{
    /// <summary>np.spacing(1), the gap between 1 and the next double, added to tp + fp in the precision.</summary>
    const double Eps = 2.220446049250313e-16;

    readonly CocoGroundTruth _groundTruth;
    readonly CocoEvalParameters _parameters;

    /// <summary>An evaluator for one ground truth; <paramref name="parameters"/> defaults to the COCO bbox protocol.</summary>
    public CocoEvaluator(CocoGroundTruth groundTruth, CocoEvalParameters? parameters = null)
    {
        ArgumentNullException.ThrowIfNull(groundTruth);
        _groundTruth = groundTruth;
        _parameters = parameters ?? CocoEvalParameters.Bbox;
        if (_parameters.MaxDetections.Count != 3)
            throw new ArgumentException("the COCO summary needs exactly three maxDets values", nameof(parameters));
    }

    /// <summary>Loads both files and runs the whole evaluation.</summary>
    public static CocoMetrics EvaluateFiles(string annotationsPath, string detectionsPath)
    {
        var gt = CocoGroundTruth.Load(annotationsPath);
        var evaluator = new CocoEvaluator(gt);
        return evaluator.Evaluate(CocoDetections.Load(detectionsPath, gt));
    }

    /// <summary>evaluate + accumulate + summarize.</summary>
    public CocoMetrics Evaluate(CocoDetections detections) => EvaluateWithCurves(detections).Metrics;

    /// <summary><see cref="Evaluate"/> that also returns the accumulation (precision/recall arrays) the plots read.</summary>
    public (CocoAccumulation Accumulation, CocoMetrics Metrics) EvaluateWithCurves(CocoDetections detections)
    {
        var accumulation = Accumulate(EvaluateImages(detections));
        return (accumulation, accumulation.Summarize(_groundTruth.Warnings.Concat(detections.Warnings).ToArray()));
    }

    /// <summary>pycocotools <c>evaluate()</c>: matches detections to annotations per image, category and area range.</summary>
    public CocoImageEvaluations EvaluateImages(CocoDetections detections)
    {
        ArgumentNullException.ThrowIfNull(detections);
        int imageCount = _groundTruth.ImageIds.Count, categoryCount = _groundTruth.Categories.Count;
        var imageIndex = Index(_groundTruth.ImageIds);
        var categoryIndex = Index(_groundTruth.Categories.Select(c => c.Id).ToArray());
        var gtCells = GroupGroundTruth(imageIndex, categoryIndex, imageCount);
        var dtCells = GroupDetections(detections.ItemArray, imageIndex, categoryIndex, imageCount);
        var evaluations = new CocoImageEvaluations(categoryCount, _parameters.AreaRanges.Count, imageCount);
        // Each cell writes only its own slots, so the result does not depend on scheduling.
        Parallel.For(0, categoryCount * imageCount, cell =>
            EvaluateCell(cell, gtCells.Slice(cell), dtCells.Slice(cell), detections.ItemArray, evaluations));
        return evaluations;
    }

    /// <summary>pycocotools <c>computeIoU</c> + <c>evaluateImg</c> for one (category, image) cell, all area ranges.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot, and a one-shot CLI run would stay at tier 0
    void EvaluateCell(int cell, ReadOnlySpan<int> gtCell, ReadOnlySpan<int> dtCell, CocoDetection[] dts,
        CocoImageEvaluations evaluations)
    {
        if (gtCell.Length == 0 && dtCell.Length == 0) return; // pycocotools: evaluateImg returns None
        var p = _parameters;
        var gts = _groundTruth.AnnotationArray;
        int imageCount = evaluations.ImageCount, k = cell / imageCount, i = cell % imageCount;
        int thresholdCount = p.IouThresholds.Count;

        // Highest score first, ties in results-file order; only the first maxDets[-1] are kept.
        var ranked = new RankedScore[dtCell.Length];
        for (int j = 0; j < ranked.Length; j++) ranked[j] = new RankedScore(dts[dtCell[j]].Score, dtCell[j]);
        Array.Sort(ranked);
        int D = Math.Min(ranked.Length, p.MaxDetections[^1]), G = gtCell.Length;
        var scores = new double[D];
        for (int d = 0; d < D; d++) scores[d] = ranked[d].Score;

        var ious = new double[D * G]; // (D, G), annotations in file order
        var gtCrowd = new bool[G];
        for (int g = 0; g < G; g++) gtCrowd[g] = gts[gtCell[g]].IsCrowd;
        for (int d = 0; d < D; d++)
        {
            ref readonly var dt = ref dts[ranked[d].Position];
            for (int g = 0; g < G; g++)
            {
                ref readonly var gt = ref gts[gtCell[g]];
                ious[d * G + g] = CocoBoxIou.Compute(dt.X, dt.Y, dt.Width, dt.Height, gt.X, gt.Y, gt.Width, gt.Height, gt.IsCrowd);
            }
        }

        var gtOrder = new int[G];
        var gtIgnored = new bool[G];
        var taken = new bool[G];
        for (int a = 0; a < p.AreaRanges.Count; a++)
        {
            var range = p.AreaRanges[a];
            // Ignore flags depend on the range, and so does the order (non-ignored first, stable): the matching
            // is therefore redone per range, as pycocotools does.
            int n = 0;
            for (int g = 0; g < G; g++) if (!IsIgnored(gts[gtCell[g]], range)) gtOrder[n++] = g;
            int nonIgnored = n;
            for (int g = 0; g < G; g++) if (IsIgnored(gts[gtCell[g]], range)) gtOrder[n++] = g;
            for (int s = 0; s < G; s++) gtIgnored[s] = s >= nonIgnored;

            var outcomes = new DetectionOutcome[thresholdCount * D];
            for (int t = 0; t < thresholdCount; t++)
            {
                Array.Clear(taken);
                double threshold = Math.Min(p.IouThresholds[t], 1 - 1e-10);
                for (int d = 0; d < D; d++)
                {
                    int m = Match(ious.AsSpan(d * G, G), gtOrder, gtIgnored, taken, gtCrowd, threshold);
                    double area = dts[ranked[d].Position].Area;
                    bool outOfRange = area < range.Min || area > range.Max;
                    DetectionOutcome outcome;
                    if (m < 0) outcome = outOfRange ? DetectionOutcome.Ignored : DetectionOutcome.FalsePositive;
                    else
                    {
                        taken[m] = true;
                        // pycocotools stores the matched annotation's id and later reads it as a boolean, so a
                        // match on id 0 is "unmatched" (while that annotation stays taken).
                        bool matched = gts[gtCell[gtOrder[m]]].Id != 0;
                        outcome = gtIgnored[m] ? DetectionOutcome.Ignored
                            : matched ? DetectionOutcome.TruePositive
                            : outOfRange ? DetectionOutcome.Ignored : DetectionOutcome.FalsePositive;
                    }
                    outcomes[d * thresholdCount + t] = outcome;
                }
            }
            evaluations.Results[(k * p.AreaRanges.Count + a) * imageCount + i] = new CocoImageEvaluation(scores, outcomes, nonIgnored);
        }
    }

    static bool IsIgnored(in CocoGroundTruthBox gt, CocoAreaRange range) =>
        gt.IsCrowd || gt.Area < range.Min || gt.Area > range.Max;

    /// <summary>pycocotools' greedy match of one detection, annotations in ignore-sorted order: skip a taken
    /// annotation unless it is a crowd; once a real annotation is chosen, stop at the first ignored one; take any
    /// IoU &gt;= the best so far (starting at the threshold, so equality matches; a later equal IoU wins).</summary>
    /// <returns>The position in <paramref name="gtOrder"/> of the match, or -1.</returns>
    static int Match(ReadOnlySpan<double> iouRow, int[] gtOrder, bool[] gtIgnored, bool[] taken, bool[] gtCrowd,
        double threshold)
    {
        double best = threshold;
        int m = -1;
        for (int s = 0; s < gtOrder.Length; s++)
        {
            int g = gtOrder[s];
            if (taken[s] && !gtCrowd[g]) continue;
            if (m > -1 && !gtIgnored[m] && gtIgnored[s]) break;
            if (iouRow[g] < best) continue;
            best = iouRow[g];
            m = s;
        }
        return m;
    }

    /// <summary>pycocotools <c>accumulate()</c>: per category, area range and maxDets, the 101-point interpolated
    /// precision for every IoU threshold and the final recall.</summary>
    public CocoAccumulation Accumulate(CocoImageEvaluations evaluations)
    {
        ArgumentNullException.ThrowIfNull(evaluations);
        var p = _parameters;
        int T = p.IouThresholds.Count, R = p.RecallThresholds.Count, K = evaluations.CategoryCount;
        int A = evaluations.AreaCount, M = p.MaxDetections.Count;
        var precision = new double[T * R * K * A * M];
        var recall = new double[T * K * A * M];
        Array.Fill(precision, -1.0);
        Array.Fill(recall, -1.0);
        // Each category fills only its own entries.
        Parallel.For(0, K, k => AccumulateCategory(k, evaluations, precision, recall));
        return new CocoAccumulation(p, _groundTruth.Categories, precision, recall);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    void AccumulateCategory(int k, CocoImageEvaluations evaluations, double[] precision, double[] recall)
    {
        var p = _parameters;
        int T = p.IouThresholds.Count, R = p.RecallThresholds.Count, K = evaluations.CategoryCount;
        int A = evaluations.AreaCount, M = p.MaxDetections.Count, I = evaluations.ImageCount;
        var recallThresholds = p.RecallThresholds;
        var results = evaluations.Results;
        // An image has a result for every area range or for none (None when it has neither annotations nor
        // detections of the category), and the same detections in every range; so the concatenation order
        // depends only on maxDets and is shared by the area ranges.
        var images = new List<int>();
        for (int i = 0; i < I; i++) if (results[k * A * I + i] is not null) images.Add(i);
        if (images.Count == 0) return;
        var q = new double[R];

        for (int m = 0; m < M; m++)
        {
            int maxDet = p.MaxDetections[m];
            // Concatenate in image-id order (first maxDet of each image), then a stable sort by score: ties across
            // images are broken by image id, then by the order within the image.
            int n = 0;
            foreach (int i in images) n += Math.Min(results[k * A * I + i]!.DetectionCount, maxDet);
            var ranked = new RankedScore[n];
            int offset = 0;
            foreach (int i in images)
            {
                var e = results[k * A * I + i]!;
                for (int d = 0; d < Math.Min(e.DetectionCount, maxDet); d++, offset++) ranked[offset] = new RankedScore(e.Scores[d], offset);
            }
            Array.Sort(ranked);

            var outcomes = new DetectionOutcome[n * T]; // (n, T), images concatenated
            var rc = new double[n];
            var pr = new double[n];
            for (int a = 0; a < A; a++)
            {
                int npig = 0;
                offset = 0;
                foreach (int i in images)
                {
                    var e = results[(k * A + a) * I + i]!;
                    npig += e.NonIgnoredGroundTruth;
                    int take = Math.Min(e.DetectionCount, maxDet);
                    Array.Copy(e.Outcomes, 0, outcomes, offset * T, take * T); // (take, T) rows
                    offset += take;
                }
                // Nothing but ignored annotations (or none): the entry stays -1 and drops out of every mean.
                if (npig == 0) continue;

                for (int t = 0; t < T; t++)
                {
                    double tp = 0, fp = 0;
                    for (int j = 0; j < n; j++)
                    {
                        var o = outcomes[ranked[j].Position * T + t];
                        if (o == DetectionOutcome.TruePositive) tp++;
                        else if (o == DetectionOutcome.FalsePositive) fp++;
                        rc[j] = tp / npig;
                        // np.spacing(1) keeps 0/0 finite; a perfect result reads 0.9999999999999998.
                        pr[j] = tp / (fp + tp + Eps);
                    }
                    recall[((t * K + k) * A + a) * M + m] = n > 0 ? rc[n - 1] : 0;
                    for (int j = n - 1; j > 0; j--) if (pr[j] > pr[j - 1]) pr[j - 1] = pr[j];
                    // searchsorted(rc, recThrs, 'left'): the first detection reaching each recall threshold;
                    // thresholds beyond the final recall keep precision 0.
                    Array.Clear(q);
                    int pos = 0;
                    for (int r = 0; r < R; r++)
                    {
                        while (pos < n && rc[pos] < recallThresholds[r]) pos++;
                        if (pos >= n) break;
                        q[r] = pr[pos];
                    }
                    for (int r = 0; r < R; r++) precision[(((t * R + r) * K + k) * A + a) * M + m] = q[r];
                }
            }
        }
    }

    static Dictionary<long, int> Index(IReadOnlyList<long> ids)
    {
        var index = new Dictionary<long, int>(ids.Count);
        for (int i = 0; i < ids.Count; i++) index[ids[i]] = i;
        return index;
    }

    /// <summary>Annotations per (category, image) cell in pycocotools' order. Its <c>getAnnIds</c> walks images in
    /// id order and each image's annotations in file order, and <c>loadAnns</c> resolves each id to the last
    /// annotation with that id, so a duplicate id is replaced by the later annotation (in the later one's cell).</summary>
    CellIndex GroupGroundTruth(Dictionary<long, int> imageIndex, Dictionary<long, int> categoryIndex, int imageCount)
    {
        var anns = _groundTruth.AnnotationArray;
        var lastById = new Dictionary<long, int>(anns.Length);
        for (int j = 0; j < anns.Length; j++) lastById[anns[j].Id] = j;
        var entries = new List<(int Image, int File, int Resolved, int Cell)>(anns.Length);
        for (int j = 0; j < anns.Length; j++)
        {
            if (!imageIndex.TryGetValue(anns[j].ImageId, out int img) || !categoryIndex.ContainsKey(anns[j].CategoryId)) continue;
            int r = lastById[anns[j].Id];
            if (!imageIndex.TryGetValue(anns[r].ImageId, out int rImg) || !categoryIndex.TryGetValue(anns[r].CategoryId, out int rCat)) continue;
            entries.Add((img, j, r, rCat * imageCount + rImg));
        }
        entries.Sort((x, y) => x.Image != y.Image ? x.Image.CompareTo(y.Image) : x.File.CompareTo(y.File));
        return CellIndex.Build(entries.Select(e => (e.Cell, e.Resolved)).ToArray(), categoryIndex.Count * imageCount);
    }

    static CellIndex GroupDetections(CocoDetection[] dts, Dictionary<long, int> imageIndex,
        Dictionary<long, int> categoryIndex, int imageCount)
    {
        var entries = new List<(int Cell, int Item)>(dts.Length);
        for (int j = 0; j < dts.Length; j++)
        {
            // Unknown categories are dropped (only the ground truth's categories are evaluated).
            if (imageIndex.TryGetValue(dts[j].ImageId, out int img) && categoryIndex.TryGetValue(dts[j].CategoryId, out int cat))
                entries.Add((cat * imageCount + img, j));
        }
        return CellIndex.Build(entries.ToArray(), categoryIndex.Count * imageCount);
    }

    /// <summary>Items bucketed by cell, keeping the given order within a cell (a stable counting sort).</summary>
    readonly struct CellIndex(int[] starts, int[] items)
    {
        public ReadOnlySpan<int> Slice(int cell) => items.AsSpan(starts[cell], starts[cell + 1] - starts[cell]);

        public static CellIndex Build((int Cell, int Item)[] entries, int cellCount)
        {
            var starts = new int[cellCount + 1];
            foreach (var e in entries) starts[e.Cell + 1]++;
            for (int c = 0; c < cellCount; c++) starts[c + 1] += starts[c];
            var fill = starts[..cellCount];
            var items = new int[entries.Length];
            foreach (var e in entries) items[fill[e.Cell]++] = e.Item;
            return new CellIndex(starts, items);
        }
    }
}
