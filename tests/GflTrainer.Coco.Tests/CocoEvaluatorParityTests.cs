using System.Text.Json;
using Xunit;
using GflTrainer.Coco;
using GflTrainer.Tests;

namespace GflTrainer.Coco.Tests;

/// <summary>Every case under Fixtures/cocoeval against the numbers pycocotools 2.0.11 computed from the same files.</summary>
public sealed class CocoEvaluatorParityTests
{
    const double Tolerance = 1e-6;

    public static IEnumerable<object[]> Cases() =>
        Directory.EnumerateDirectories(TestPaths.Fixtures("cocoeval")).Select(Path.GetFileName)
            .Order(StringComparer.Ordinal).Select(name => new object[] { name! });

    // Each case is evaluated once and shared by the theories below.
    static readonly System.Collections.Concurrent.ConcurrentDictionary<string,
        Lazy<(CocoGroundTruth, CocoDetections, CocoMetrics, JsonElement)>> s_runs = new();

    static (CocoGroundTruth Gt, CocoDetections Dets, CocoMetrics Metrics, JsonElement Expected) Run(string caseName) =>
        s_runs.GetOrAdd(caseName, name => new(() => Evaluate(name))).Value;

    static (CocoGroundTruth, CocoDetections, CocoMetrics, JsonElement) Evaluate(string caseName)
    {
        string dir = TestPaths.Fixtures("cocoeval", caseName);
        var gt = CocoGroundTruth.Load(Path.Combine(dir, "gt.json"));
        var dets = CocoDetections.Load(Path.Combine(dir, "dets.json"), gt);
        var metrics = new CocoEvaluator(gt).Evaluate(dets);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "expected.json")));
        return (gt, dets, metrics, doc.RootElement.Clone());
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Stats_MatchPycocotools(string caseName)
    {
        var (_, _, metrics, expected) = Run(caseName);
        var want = expected.GetProperty("stats").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        var names = expected.GetProperty("stats_names").EnumerateArray().Select(e => e.GetString()!).ToArray();
        Assert.Equal(CocoMetrics.StatNames, names);
        Assert.Equal(12, want.Length);
        for (int i = 0; i < 12; i++)
            Assert.True(Math.Abs(metrics.Stats[i] - want[i]) <= Tolerance,
                $"{caseName} {names[i]}: ours {metrics.Stats[i]:R}, pycocotools {want[i]:R}");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void PerCategoryAp_MatchesMmdetectionRule(string caseName)
    {
        var (_, _, metrics, expected) = Run(caseName);
        var want = expected.GetProperty("per_category_ap");
        var names = expected.GetProperty("category_names");
        Assert.Equal(want.EnumerateObject().Count(), metrics.PerCategory.Count);
        foreach (var c in metrics.PerCategory)
        {
            string id = c.CategoryId.ToString(System.Globalization.CultureInfo.InvariantCulture);
            double ap = want.GetProperty(id).GetDouble();
            Assert.True(Math.Abs(c.AP - ap) <= Tolerance, $"{caseName} category {id}: ours {c.AP:R}, pycocotools {ap:R}");
            Assert.Equal(names.GetProperty(id).GetString(), c.Name);
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void SummaryLines_AreWhatPycocotoolsPrinted(string caseName)
    {
        var (_, _, metrics, expected) = Run(caseName);
        var want = expected.GetProperty("summary_lines").EnumerateArray().Select(e => e.GetString()!).ToArray();
        Assert.Equal(want, metrics.SummaryLines);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Loading_CountsWhatTheCaseHolds(string caseName)
    {
        var (gt, dets, metrics, expected) = Run(caseName);
        var counts = expected.GetProperty("counts");
        Assert.Equal(counts.GetProperty("images").GetInt32(), gt.ImageIds.Count);
        Assert.Equal(expected.GetProperty("params").GetProperty("num_imgIds").GetInt32(), gt.ImageIds.Count);
        Assert.Equal(counts.GetProperty("categories").GetInt32(), gt.Categories.Count);
        Assert.Equal(counts.GetProperty("gt").GetInt32(), gt.Annotations.Count);
        Assert.Equal(counts.GetProperty("gt_crowd").GetInt32(), gt.Annotations.Count(a => a.IsCrowd));
        Assert.Equal(counts.GetProperty("dets").GetInt32(), dets.Items.Count);
        var catIds = expected.GetProperty("params").GetProperty("catIds").EnumerateArray().Select(e => e.GetInt64());
        Assert.Equal(catIds, gt.Categories.Select(c => c.Id));
        // The id-0 warning appears exactly when the case has an annotation with id 0.
        bool hasIdZero = counts.GetProperty("gt_ann_id_zero").GetInt32() > 0;
        Assert.Equal(hasIdZero, metrics.Warnings.Any(w => w.Contains("id 0", StringComparison.Ordinal)));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Parameters_AreThePycocotoolsDoubles(string caseName)
    {
        var p = JsonDocument.Parse(File.ReadAllText(TestPaths.Fixtures("cocoeval", caseName, "expected.json")))
            .RootElement.GetProperty("params");
        var ours = CocoEvalParameters.Bbox;
        // Exact equality: 0.8999999999999999 and 0.35000000000000003 must come out bit for bit.
        Assert.Equal(p.GetProperty("iouThrs").EnumerateArray().Select(e => e.GetDouble()), ours.IouThresholds);
        Assert.Equal(p.GetProperty("recThrs").EnumerateArray().Select(e => e.GetDouble()), ours.RecallThresholds);
        Assert.Equal(p.GetProperty("maxDets").EnumerateArray().Select(e => e.GetInt32()), ours.MaxDetections);
        var ranges = p.GetProperty("areaRng").EnumerateArray()
            .Select(r => r.EnumerateArray().Select(v => v.GetDouble()).ToArray()).ToArray();
        Assert.Equal(ranges.Select(r => r[0]), ours.AreaRanges.Select(r => r.Min));
        Assert.Equal(ranges.Select(r => r[1]), ours.AreaRanges.Select(r => r.Max));
        Assert.Equal(p.GetProperty("areaRngLbl").EnumerateArray().Select(e => e.GetString()), ours.AreaRanges.Select(r => r.Label));
    }
}
