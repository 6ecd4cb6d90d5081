using System.Text.Json;
using Xunit;
using GflTrainer.Coco;
using GflTrainer.Tests;

namespace GflTrainer.Coco.Tests;

/// <summary>Fixtures/cocoeval_bad_input: what pycocotools does with each bad results file (behaviour.json), and what
/// we do: the same numbers where it accepts the file, a clear <see cref="CocoFormatException"/> where it crashes,
/// and zeros with a warning for an empty list.</summary>
public sealed class CocoBadInputTests
{
    static JsonElement Behaviour(string caseName) =>
        JsonDocument.Parse(File.ReadAllText(CocoBadInputCases.CaseFile(caseName, "behaviour.json"))).RootElement.Clone();

    [Theory]
    [MemberData(nameof(CocoBadInputCases.Cases), MemberType = typeof(CocoBadInputCases))]
    public void Library_FollowsBehaviour(string caseName)
    {
        var b = Behaviour(caseName);
        var gt = CocoGroundTruth.Load(CocoBadInputCases.CaseFile(caseName, "gt.json"));
        string detsPath = CocoBadInputCases.CaseFile(caseName, "dets.json");
        if (b.GetProperty("pycocotools_accepts").GetBoolean())
        {
            var metrics = new CocoEvaluator(gt).Evaluate(CocoDetections.Load(detsPath, gt));
            AssertClose(b.GetProperty("stats"), metrics.Stats);
            foreach (var c in metrics.PerCategory)
                Assert.Equal(b.GetProperty("per_category_ap").GetProperty(c.CategoryId.ToString()).GetDouble(), c.AP, 1e-6);
        }
        else if (caseName == "empty_detections")
        {
            // Our documented choice: score an empty result set (pycocotools' IndexError helps nobody) with the
            // numbers COCOeval gives a result set without annotations, and warn.
            var dets = CocoDetections.Load(detsPath, gt);
            var metrics = new CocoEvaluator(gt).Evaluate(dets);
            AssertClose(b.GetProperty("stats_if_result_set_built_by_hand"), metrics.Stats);
            Assert.Contains(metrics.Warnings, w => w.Contains("no detections", StringComparison.Ordinal));
        }
        else
        {
            var e = Assert.Throws<CocoFormatException>(() => CocoDetections.Load(detsPath, gt));
            Assert.Equal(detsPath, e.File);
            Assert.StartsWith(detsPath + ": ", e.Message);
            Assert.Contains(CocoBadInputCases.ExpectedErrors[caseName], e.Message);
            Assert.DoesNotContain('\n', e.Message);
        }
    }

    [Fact]
    public void UnknownCategory_IsDroppedWithAWarning()
    {
        var gt = CocoGroundTruth.Load(CocoBadInputCases.CaseFile("unknown_category_id", "gt.json"));
        var dets = CocoDetections.Load(CocoBadInputCases.CaseFile("unknown_category_id", "dets.json"), gt);
        Assert.Contains(dets.Warnings, w => w.Contains("category id", StringComparison.Ordinal));
    }

    [Fact]
    public void MissingScore_NamesTheDetection()
    {
        var gt = CocoGroundTruth.Load(CocoBadInputCases.CaseFile("missing_score", "gt.json"));
        var e = Assert.Throws<CocoFormatException>(() => CocoDetections.Load(CocoBadInputCases.CaseFile("missing_score", "dets.json"), gt));
        Assert.Matches(@"detection \[\d+\] \(image_id \d+\) has no ""score""", e.Message);
    }

    static void AssertClose(JsonElement expected, IReadOnlyList<double> actual)
    {
        var want = expected.EnumerateArray().Select(e => e.GetDouble()).ToArray();
        Assert.Equal(want.Length, actual.Count);
        for (int i = 0; i < want.Length; i++)
            Assert.True(Math.Abs(want[i] - actual[i]) <= 1e-6, $"{CocoMetrics.StatNames[i]}: {actual[i]:R} vs {want[i]:R}");
    }
}
