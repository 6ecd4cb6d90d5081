using Xunit;

namespace GflTrainer.Coco.Tests;

public sealed class CocoPrecisionRecallTests
{
    [Fact]
    public void Curves_AverageToTheSummaryAndClasswiseAp_AndAClassWithoutGroundTruthHasNone()
    {
        var cats = new[] { new CocoCategory(1, "a"), new CocoCategory(2, "b"), new CocoCategory(5, "empty") };
        var gt = new CocoGroundTruth([1, 2], cats,
        [
            new CocoGroundTruthBox(1, 1, 1, 0, 0, 40, 40, 1600, false),
            new CocoGroundTruthBox(2, 1, 1, 100, 100, 40, 40, 1600, false),
            new CocoGroundTruthBox(3, 2, 2, 10, 10, 60, 30, 1800, false),
            new CocoGroundTruthBox(4, 2, 1, 200, 10, 30, 30, 900, false),
        ]);
        var dets = CocoDetections.Create(gt,
        [
            new CocoDetection(1, 1, 0, 0, 40, 40, 0.9),      // exact
            new CocoDetection(1, 1, 104, 100, 40, 40, 0.8),  // IoU 0.82
            new CocoDetection(1, 1, 300, 300, 40, 40, 0.85), // false positive between them
            new CocoDetection(2, 2, 15, 12, 60, 30, 0.7),    // IoU ~0.79
            new CocoDetection(2, 1, 210, 10, 30, 30, 0.6),   // IoU 0.5: matched at 0.5 only
        ]);
        var evaluator = new CocoEvaluator(gt);
        var accumulation = evaluator.Accumulate(evaluator.EvaluateImages(dets));
        var metrics = accumulation.Summarize();
        var pr = CocoPrecisionRecall.From(accumulation);

        Assert.Equal(101, pr.RecallThresholds.Count);
        Assert.Null(pr.Categories[2].AtIou50);
        Assert.Equal(-1, pr.Categories[2].AP);
        for (int k = 0; k < 2; k++)
            Assert.Equal(metrics.PerCategory[k].AP, pr.Categories[k].AP, 1e-12);
        Assert.Equal(metrics.AP50, pr.MeanAtIou50.Average(), 1e-12);
        Assert.Equal(metrics.AP, pr.MeanIou50To95.Average(), 1e-12);
        // Class a at IoU 0.5: three gts all found, recall 1; precision 1 up to recall 1/3, then 2/3 (after the false
        // positive), then 3/4 is interpolated back to the left as the running maximum from the right.
        var a = pr.Categories[0];
        Assert.Equal(1, a.Recall50);
        Assert.Equal(1, a.AtIou50![0], 1e-12);
        Assert.Equal(0.75, a.AtIou50[100], 1e-12);
        Assert.True(a.AtIou50.Zip(a.AtIou50.Skip(1)).All(p => p.First >= p.Second), "interpolated precision never rises");
    }
}
