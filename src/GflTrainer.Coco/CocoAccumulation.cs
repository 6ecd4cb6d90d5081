namespace GflTrainer.Coco;

/// <summary>pycocotools' <c>eval['precision']</c> (T, R, K, A, M) and <c>eval['recall']</c> (T, K, A, M):
/// T IoU thresholds, R recall thresholds, K categories (ascending id), A area ranges, M maxDets values.
/// -1 marks an entry without non-ignored ground truth; it is left out of every mean.</summary>
public sealed class CocoAccumulation
{
    readonly double[] _precision;
    readonly double[] _recall;
    readonly int _t, _r, _k, _a, _m;

    internal CocoAccumulation(CocoEvalParameters parameters, IReadOnlyList<CocoCategory> categories, double[] precision, double[] recall)
    {
        Parameters = parameters;
        Categories = categories;
        _precision = precision;
        _recall = recall;
        (_t, _r, _k, _a, _m) = (parameters.IouThresholds.Count, parameters.RecallThresholds.Count, categories.Count,
            parameters.AreaRanges.Count, parameters.MaxDetections.Count);
    }

    /// <summary>The parameters the evaluation ran with.</summary>
    public CocoEvalParameters Parameters { get; }

    /// <summary>The evaluated categories, in the K order of the arrays.</summary>
    public IReadOnlyList<CocoCategory> Categories { get; }

    /// <summary>Interpolated precision at IoU threshold t, recall threshold r, category k, area range a, maxDets m.</summary>
    public double Precision(int t, int r, int k, int a, int m) => _precision[(((t * _r + r) * _k + k) * _a + a) * _m + m];

    /// <summary>Final recall at IoU threshold t, category k, area range a, maxDets m.</summary>
    public double Recall(int t, int k, int a, int m) => _recall[((t * _k + k) * _a + a) * _m + m];

    /// <summary>pycocotools <c>summarize()</c> plus the per-category AP of mmdetection's classwise table.</summary>
    /// <param name="warnings">Carried into the metrics (from loading).</param>
    public CocoMetrics Summarize(IReadOnlyList<string>? warnings = null)
    {
        var p = Parameters;
        int all = AreaIndex("all");
        var maxDets = p.MaxDetections;
        var lines = new List<string>(12);
        var stats = new double[12];
        int n = 0;
        void Add(bool ap, double? iou, string area, int maxDet)
        {
            double mean = Mean(ap, iou, area, maxDet);
            stats[n++] = mean;
            lines.Add(SummaryLine(ap, iou, area, maxDet, mean));
        }
        Add(true, null, "all", maxDets[2]);
        Add(true, 0.5, "all", maxDets[2]);
        Add(true, 0.75, "all", maxDets[2]);
        Add(true, null, "small", maxDets[2]);
        Add(true, null, "medium", maxDets[2]);
        Add(true, null, "large", maxDets[2]);
        Add(false, null, "all", maxDets[0]);
        Add(false, null, "all", maxDets[1]);
        Add(false, null, "all", maxDets[2]);
        Add(false, null, "small", maxDets[2]);
        Add(false, null, "medium", maxDets[2]);
        Add(false, null, "large", maxDets[2]);

        // mmdetection / detectron2: precision[:, :, k, area all, last maxDets], mean over entries > -1.
        var perCategory = new CocoCategoryAp[_k];
        for (int k = 0; k < _k; k++)
        {
            double sum = 0;
            long count = 0;
            for (int t = 0; t < _t; t++)
                for (int r = 0; r < _r; r++)
                {
                    double v = Precision(t, r, k, all, _m - 1);
                    if (v > -1) { sum += v; count++; }
                }
            perCategory[k] = new CocoCategoryAp(Categories[k].Id, Categories[k].Name, count > 0 ? sum / count : -1);
        }
        return new CocoMetrics
        {
            AP = stats[0], AP50 = stats[1], AP75 = stats[2], APs = stats[3], APm = stats[4], APl = stats[5],
            AR1 = stats[6], AR10 = stats[7], AR100 = stats[8], ARs = stats[9], ARm = stats[10], ARl = stats[11],
            PerCategory = perCategory,
            SummaryLines = lines,
            Warnings = warnings ?? [],
        };
    }

    int AreaIndex(string label)
    {
        for (int a = 0; a < _a; a++) if (Parameters.AreaRanges[a].Label == label) return a;
        throw new InvalidOperationException($"no area range labelled '{label}'");
    }

    /// <summary>pycocotools <c>_summarize</c>: the mean of the selected entries &gt; -1, or -1 when there are none.
    /// The IoU threshold is selected by exact equality (0.5 and 0.75 are present exactly).</summary>
    double Mean(bool ap, double? iou, string area, int maxDet)
    {
        var p = Parameters;
        double sum = 0;
        long count = 0;
        for (int t = 0; t < _t; t++)
        {
            if (iou is double wanted && p.IouThresholds[t] != wanted) continue;
            for (int a = 0; a < _a; a++)
            {
                if (p.AreaRanges[a].Label != area) continue;
                for (int m = 0; m < _m; m++)
                {
                    if (p.MaxDetections[m] != maxDet) continue;
                    for (int k = 0; k < _k; k++)
                    {
                        if (ap)
                        {
                            for (int r = 0; r < _r; r++)
                            {
                                double v = Precision(t, r, k, a, m);
                                if (v > -1) { sum += v; count++; }
                            }
                        }
                        else
                        {
                            double v = Recall(t, k, a, m);
                            if (v > -1) { sum += v; count++; }
                        }
                    }
                }
            }
        }
        return count > 0 ? sum / count : -1;
    }

    /// <summary><c>' {:&lt;18} {} @[ IoU={:&lt;9} | area={:&gt;6s} | maxDets={:&gt;3d} ] = {:0.3f}'</c>.</summary>
    string SummaryLine(bool ap, double? iou, string area, int maxDet, double value)
    {
        var p = Parameters;
        string title = ap ? "Average Precision" : "Average Recall";
        string type = ap ? "(AP)" : "(AR)";
        string iouText = iou is double t
            ? PythonFixedPoint.Format(t, 2)
            : $"{PythonFixedPoint.Format(p.IouThresholds[0], 2)}:{PythonFixedPoint.Format(p.IouThresholds[^1], 2)}";
        return $" {title,-18} {type} @[ IoU={iouText,-9} | area={area,6} | maxDets={maxDet,3} ] = {PythonFixedPoint.Format(value, 3)}";
    }
}
