using System.Globalization;
using System.Text.Json;
using GflTrainer.Coco;
using GflTrainer.Data;
using ScottPlot;
using SkiaSharp;

namespace GflTrainer.Reporting;

/// <summary>What the evaluation plots are drawn at (<c>evaluation.*</c> keys).</summary>
public sealed record EvaluationPlotOptions(double ConfusionScoreThreshold = 0.3, double ConfusionIouThreshold = 0.5,
    int MosaicImages = 16, double MosaicScoreThreshold = 0.3)
{
    /// <returns>null when <c>evaluation.plots</c> is off.</returns>
    public static EvaluationPlotOptions? FromConfig(Config.EvaluationConfig c) => c.Plots
        ? new(c.ConfusionScoreThr, c.ConfusionIouThr, c.MosaicImages, c.MosaicScoreThr)
        : null;
}

/// <summary>One evaluation's plots and their numbers, written into its folder beside metrics.json: the per-class PR curves
/// (pr_curves.json + two PNGs), per-class AP bars, the confusion matrix (confusion_matrix.json + counts and normalised
/// PNGs) and a mosaic of images with ground truth (dashed) and predictions (solid). Ultralytics writes these for every
/// run; mmdetection users run separate analysis scripts for them. Files are replaced atomically and, for the same
/// evaluation, byte-identical.</summary>
public static class EvaluationPlots
{
    public const string PrCurvesJson = "pr_curves.json";
    public const string PrCurves50Png = "pr_curves_iou50.png";
    public const string PrCurves5095Png = "pr_curves_iou50-95.png";
    public const string PerClassApPng = "per_class_ap.png";
    public const string ConfusionJson = "confusion_matrix.json";
    public const string ConfusionPng = "confusion_matrix.png";
    public const string ConfusionNormalisedPng = "confusion_matrix_normalised.png";
    public const string MosaicJpg = "mosaic.jpg";

    /// <param name="imagePath">the image file of an image id, for the mosaic (null: no mosaic).</param>
    /// <returns>the files written.</returns>
    public static IReadOnlyList<string> Write(string outDir, CocoGroundTruth groundTruth, IReadOnlyList<CocoDetection> detections,
        CocoAccumulation accumulation, EvaluationPlotOptions options, Func<long, string?>? imagePath = null)
    {
        Directory.CreateDirectory(outDir);
        var written = new List<string>();
        var pr = CocoPrecisionRecall.From(accumulation);
        written.Add(WriteJson(Path.Combine(outDir, PrCurvesJson), w => WritePr(w, pr)));
        written.Add(Charts.Save(PrPlot(pr, "Precision-recall at IoU 0.5", c => c.AtIou50, pr.MeanAtIou50, c => c.AP50, "AP50"), outDir, PrCurves50Png));
        written.Add(Charts.Save(PrPlot(pr, "Precision-recall, mean over IoU 0.5:0.95", c => c.MeanIou50To95, pr.MeanIou50To95, c => c.AP, "AP"),
            outDir, PrCurves5095Png));
        written.Add(Charts.Save(ApBars(pr), outDir, PerClassApPng, Math.Max(Charts.Width, 60 * pr.Categories.Count), Charts.Height));

        var confusion = ConfusionMatrix.Compute(groundTruth, detections, options.ConfusionScoreThreshold, options.ConfusionIouThreshold);
        written.Add(WriteJson(Path.Combine(outDir, ConfusionJson), w => WriteConfusion(w, confusion)));
        var names = confusion.Categories.Select(c => c.Name).Append("background").ToList();
        int side = Math.Clamp(160 + 48 * names.Count, 600, 2400);
        var title = $"score >= {Fmt(options.ConfusionScoreThreshold)}, IoU >= {Fmt(options.ConfusionIouThreshold)}";
        var counts = new double[confusion.Size, confusion.Size];
        for (int r = 0; r < confusion.Size; r++) for (int c = 0; c < confusion.Size; c++) counts[r, c] = confusion.Counts[r, c];
        written.Add(Charts.Save(Charts.Matrix($"Confusion matrix (counts; {title})", "predicted", "ground truth", names, names,
            counts, v => v.ToString("0", CultureInfo.InvariantCulture)), outDir, ConfusionPng, side, side));
        written.Add(Charts.Save(Charts.Matrix($"Confusion matrix (row-normalised; {title})", "predicted", "ground truth", names, names,
            confusion.RowNormalised(), v => v.ToString("0.00", CultureInfo.InvariantCulture)), outDir, ConfusionNormalisedPng, side, side));

        if (imagePath is not null && options.MosaicImages > 0 && groundTruth.ImageIds.Count > 0)
            written.Add(DetectionMosaic.Write(Path.Combine(outDir, MosaicJpg), groundTruth, detections, imagePath,
                options.MosaicImages, options.MosaicScoreThreshold));
        return written;
    }

    static string Fmt(double v) => v.ToString("0.###", CultureInfo.InvariantCulture);

    static Plot PrPlot(CocoPrecisionRecall pr, string title, Func<CocoCategoryCurve, double[]?> curve, double[] mean,
        Func<CocoCategoryCurve, double> ap, string apName)
    {
        var recall = pr.RecallThresholds;
        var series = pr.Categories.Select(c => curve(c) is { } ys
                ? new ChartSeries($"{c.Name} {apName} {ap(c):0.000}", recall, ys)
                : new ChartSeries(c.Name + " (no ground truth)", [], []))
            .ToList();
        var plt = Charts.Lines(title, "recall", "precision", series, Alignment.LowerLeft);
        var present = pr.Categories.Where(c => c.AtIou50 is not null).ToList();
        if (present.Count > 1)
        {
            var all = plt.Add.ScatterLine(recall.ToArray(), mean, Colors.Black);
            all.MarkerSize = 0;
            all.LineWidth = 3;
            all.LegendText = $"all classes {apName} {present.Average(ap):0.000}";
        }
        if (present.Count == 1) plt.Title($"{title}: {present[0].Name} {apName} {ap(present[0]):0.000}");
        if (present.Count <= 1 || pr.Categories.Count > 20) plt.HideLegend();   // 80 COCO names would cover the curves; the JSON has them
        else plt.ShowLegend(Alignment.LowerLeft);
        plt.Axes.SetLimits(0, 1, 0, 1.02);
        return plt;
    }

    static Plot ApBars(CocoPrecisionRecall pr)
    {
        var cats = pr.Categories;
        return Charts.Bars("AP per class (IoU 0.5:0.95; AP50 in pr_curves.json)", "AP", cats.Select(c => c.Name).ToList(),
            cats.Select(c => c.AP < 0 ? double.NaN : c.AP).ToList());
    }

    static void WritePr(Utf8JsonWriter w, CocoPrecisionRecall pr)
    {
        w.WriteStartObject();
        w.WriteString("note", "interpolated precision at the recall thresholds (pycocotools eval['precision'], area all, maxDets 100); null: no ground truth");
        Array(w, "recall", pr.RecallThresholds);
        Array(w, "mean_precision_iou50", pr.MeanAtIou50);
        Array(w, "mean_precision_iou50_95", pr.MeanIou50To95);
        w.WriteStartArray("categories");
        foreach (var c in pr.Categories)
        {
            w.WriteStartObject();
            w.WriteNumber("id", c.CategoryId);
            w.WriteString("name", c.Name);
            Number(w, "AP", c.AP);
            Number(w, "AP50", c.AP50);
            Number(w, "recall_iou50", c.Recall50);
            if (c.AtIou50 is null) { w.WriteNull("precision_iou50"); w.WriteNull("precision_iou50_95"); }
            else { Array(w, "precision_iou50", c.AtIou50); Array(w, "precision_iou50_95", c.MeanIou50To95!); }
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    static void WriteConfusion(Utf8JsonWriter w, ConfusionMatrix m)
    {
        w.WriteStartObject();
        w.WriteString("layout", "rows: ground truth class, columns: predicted class; last row/column: background " +
            "(row: detections matching no ground truth; column: ground truths no detection found); one-to-one matching");
        w.WriteNumber("score_thr", m.ScoreThreshold);
        w.WriteNumber("iou_thr", m.IouThreshold);
        w.WriteStartArray("labels");
        foreach (var c in m.Categories) w.WriteStringValue(c.Name);
        w.WriteStringValue("background");
        w.WriteEndArray();
        w.WriteStartArray("category_ids");
        foreach (var c in m.Categories) w.WriteNumberValue(c.Id);
        w.WriteEndArray();
        w.WriteStartArray("counts");
        for (int r = 0; r < m.Size; r++)
        {
            w.WriteStartArray();
            for (int c = 0; c < m.Size; c++) w.WriteNumberValue(m.Counts[r, c]);
            w.WriteEndArray();
        }
        w.WriteEndArray();
        var n = m.RowNormalised();
        w.WriteStartArray("normalised");
        for (int r = 0; r < m.Size; r++)
        {
            w.WriteStartArray();
            for (int c = 0; c < m.Size; c++) w.WriteNumberValue(Math.Round(n[r, c], 6));
            w.WriteEndArray();
        }
        w.WriteEndArray();
        w.WriteNumber("ignored_on_crowd", m.IgnoredOnCrowd);
        w.WriteEndObject();
    }

    static void Number(Utf8JsonWriter w, string name, double v)
    {
        if (v < 0) w.WriteNull(name); else w.WriteNumber(name, Math.Round(v, 6));
    }

    static void Array(Utf8JsonWriter w, string name, IEnumerable<double> values)
    {
        w.WriteStartArray(name);
        foreach (var v in values) w.WriteNumberValue(Math.Round(v, 6));
        w.WriteEndArray();
    }

    static string WriteJson(string path, Action<Utf8JsonWriter> body)
    {
        var tmp = path + ".tmp";
        using (var fs = File.Create(tmp))
        using (var w = new Utf8JsonWriter(fs, new JsonWriterOptions { Indented = true })) body(w);
        File.Move(tmp, path, overwrite: true);
        return path;
    }
}
