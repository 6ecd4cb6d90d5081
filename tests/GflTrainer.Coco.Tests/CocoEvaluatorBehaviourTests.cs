using Xunit;
using GflTrainer.Coco;
using GflTrainer.Tests;

namespace GflTrainer.Coco.Tests;

/// <summary>Hand-built cases for rules the fixtures exercise only in bulk.</summary>
public sealed class CocoEvaluatorBehaviourTests
{
    static CocoGroundTruth OneBox(long annotationId) => new(
        [7], [new CocoCategory(1, "thing")],
        [new CocoGroundTruthBox(annotationId, 7, 1, 10, 10, 50, 40, 2000, IsCrowd: false)]);

    static CocoMetrics EvaluatePerfect(CocoGroundTruth gt) =>
        new CocoEvaluator(gt).Evaluate(CocoDetections.Create(gt, [new CocoDetection(7, 1, 10, 10, 50, 40, 0.9)]));

    [Fact]
    public void AnnotationIdZero_IsWarnedAbout_AndNeverCountsAsMatched()
    {
        var gt = OneBox(annotationId: 0);
        Assert.Single(gt.Warnings, w => w.Contains("annotation has id 0", StringComparison.Ordinal));
        var metrics = EvaluatePerfect(gt);
        // pycocotools stores the matched annotation id and reads 0 as "no match": a perfect box scores 0.
        Assert.Equal(0, metrics.AP);
        Assert.Equal(0, metrics.AR100);
        Assert.Contains(metrics.Warnings, w => w.Contains("annotation has id 0", StringComparison.Ordinal));
    }

    [Fact]
    public void AnnotationIdOne_PerfectBox_ScoresOneMinusEps_WithoutWarning()
    {
        var gt = OneBox(annotationId: 1);
        Assert.Empty(gt.Warnings);
        var evaluator = new CocoEvaluator(gt);
        var accumulation = evaluator.Accumulate(evaluator.EvaluateImages(
            CocoDetections.Create(gt, [new CocoDetection(7, 1, 10, 10, 50, 40, 0.9)])));
        // tp / (tp + fp + eps) with eps = np.spacing(1): pycocotools' 0.9999999999999998, not 1.
        Assert.Equal(0.9999999999999998, accumulation.Precision(t: 9, r: 100, k: 0, a: 0, m: 2));
        var metrics = accumulation.Summarize();
        Assert.Equal(1, metrics.AP, 1e-15);
        Assert.Equal(1, metrics.AR100);
        Assert.Equal(-1, metrics.APs); // area 2000 is medium: nothing small or large to average
        Assert.Equal(-1, metrics.APl);
        Assert.Empty(metrics.Warnings);
    }

    [Fact]
    public void DuplicateAnnotationId_LaterAnnotationReplacesEarlier_AsInPycocotools()
    {
        // pycocotools 2.0.11 on these inputs: AP 0.5049504950495048, AR100 0.5. Both entries resolve to the later
        // box (id -> annotation keeps the last), so the first box is never there to be found.
        var gt = new CocoGroundTruth([1], [new CocoCategory(1, "a")],
        [
            new CocoGroundTruthBox(5, 1, 1, 0, 0, 40, 40, 1600, IsCrowd: false),
            new CocoGroundTruthBox(5, 1, 1, 100, 100, 40, 40, 1600, IsCrowd: false),
        ]);
        Assert.Contains(gt.Warnings, w => w.Contains("repeat an earlier id", StringComparison.Ordinal));
        var metrics = new CocoEvaluator(gt).Evaluate(CocoDetections.Create(gt,
            [new CocoDetection(1, 1, 100, 100, 40, 40, 0.9), new CocoDetection(1, 1, 0, 0, 40, 40, 0.8)]));
        Assert.Equal(0.5049504950495048, metrics.AP, 1e-12);
        Assert.Equal(0.5, metrics.AR100, 1e-12);
    }

    [Fact]
    public void CrowdIou_IsIntersectionOverDetectionArea()
    {
        // Detection 10x10 half inside a 100x100 crowd: IoU = 50/100 against the crowd, 50/(100+10000-50) otherwise.
        Assert.Equal(0.5, CocoBoxIou.Compute(95, 0, 10, 10, 0, 0, 100, 100, crowd: true));
        Assert.Equal(50.0 / 10050, CocoBoxIou.Compute(95, 0, 10, 10, 0, 0, 100, 100, crowd: false));
        Assert.Equal(0, CocoBoxIou.Compute(0, 0, 0, 10, 0, 0, 100, 100, crowd: false)); // zero width never overlaps
    }

    [Fact]
    public void Summary_IsIndependentOfThreadScheduling()
    {
        string dir = TestPaths.Fixtures("cocoeval", "random_ties_dups");
        var first = CocoEvaluator.EvaluateFiles(Path.Combine(dir, "gt.json"), Path.Combine(dir, "dets.json"));
        var second = CocoEvaluator.EvaluateFiles(Path.Combine(dir, "gt.json"), Path.Combine(dir, "dets.json"));
        Assert.Equal(first.Stats, second.Stats);
        Assert.Equal(first.ToJson(), second.ToJson());
    }

    [Fact]
    public void MetricsJson_HasBboxStatsAndPerCategory()
    {
        var metrics = EvaluatePerfect(OneBox(annotationId: 1));
        using var doc = System.Text.Json.JsonDocument.Parse(metrics.ToJson());
        var root = doc.RootElement;
        Assert.Equal(CocoMetrics.StatNames, root.GetProperty("bbox").EnumerateObject().Select(p => p.Name));
        Assert.Equal(metrics.Stats, root.GetProperty("stats").EnumerateArray().Select(e => e.GetDouble()));
        Assert.Equal(metrics.AP, root.GetProperty("per_category").GetProperty("thing").GetDouble());
        Assert.Equal(-1, root.GetProperty("bbox").GetProperty("APl").GetDouble());
    }

    [Fact]
    public void PerCategoryTable_ShowsNanForCategoriesWithoutGroundTruth()
    {
        var gt = new CocoGroundTruth([7], [new CocoCategory(1, "thing"), new CocoCategory(2, "other")],
            [new CocoGroundTruthBox(1, 7, 1, 10, 10, 50, 40, 2000, IsCrowd: false)]);
        var metrics = new CocoEvaluator(gt).Evaluate(CocoDetections.Create(gt, [new CocoDetection(7, 1, 10, 10, 50, 40, 0.9)]));
        Assert.Equal(
        [
            "+----------+-------+----------+-----+",
            "| category | AP    | category | AP  |",
            "+----------+-------+----------+-----+",
            "| thing    | 1.000 | other    | nan |",
            "+----------+-------+----------+-----+",
        ], metrics.PerCategoryTable());
    }

    [Theory]
    [InlineData(0.0005, "0.001")]
    [InlineData(0.0625, "0.062")] // exact tie: Python rounds half to even
    [InlineData(0.5625, "0.562")]
    [InlineData(0.9375, "0.938")]
    [InlineData(0.6665, "0.666")] // 0.66649999... below the tie
    [InlineData(1.0005, "1.000")]
    [InlineData(0.9999999999999998, "1.000")]
    [InlineData(-1.0, "-1.000")]
    public void FixedPoint_FormatsLikePython(double value, string python) =>
        Assert.Equal(python, PythonFixedPoint.Format(value, 3));
}
