using GflTrainer.Data.Statistics;
using GflTrainer.Config;
using GflTrainer.Data;
using GflTrainer.Data.Transforms;
using GflTrainer.Training.Losses;
using GflTrainer.Training.Targets;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Data;

/// <summary>Anchor coverage counts positives with the training loss's own target builder; these tests pin the count
/// on known boxes and against the batch targets training builds, so the statistic cannot drift from training.</summary>
public sealed class AnchorCoverageTests
{
    static readonly CategoryMap Categories = new([new CategoryEntry(1, "a"), new CategoryEntry(2, "b")]);

    static GflConfig Config(params string[] overrides) => ConfigLoader.LoadYaml("", "coverage.yaml", overrides);

    static readonly string[] Retinanet =
        ["model.head.type=retinanet", "model.head.octave_base_scale=4", "model.head.scales_per_octave=3", "model.head.ratios=[0.5,1.0,2.0]"];

    // 320 x 320, not resized at img_scale [320, 320]: a 2x2 box between anchor centres (every centre is a multiple of
    // the stride, none lies inside 100..102) and a 64x64 box.
    static ResizedImage TinyAndNormal() => new(1, 320, 320, [100, 100, 102, 102, 150, 150, 214, 214], [0, 1], []);

    // 427 x 320 (pads to 448 x 320): in a batch with the square image, that one has invalid anchors on the right.
    static ResizedImage Wide() => new(2, 427, 320,
        [10, 10, 80, 90, 200, 50, 260, 200, 300, 200, 420, 310, 100, 250, 104, 254], [0, 1, 0, 1], []);

    [Fact]
    public void AnchorCoverage_TinyBox_GetsNoAtssPositive_NormalBoxDoes()
    {
        var cfg = Config("data.img_scale=[320,320]");
        var c = AnchorCoverage.Compute(cfg.Model, cfg.Data.PadDivisor, [TinyAndNormal()], Categories);
        Assert.Equal(2, c.Gts);
        Assert.Equal(1, c.WithoutPositive);
        Assert.Equal(50.0, c.PercentWithoutPositive);
        Assert.Equal([("small", 1L, 1L), ("medium", 1L, 0L), ("large", 0L, 0L)], c.PerSize.Select(g => (g.Name, g.Gts, g.WithoutPositive)));
        Assert.Equal([("a", 1L, 1L), ("b", 1L, 0L)], c.PerClass.Select(g => (g.Name, g.Gts, g.WithoutPositive)));
        Assert.StartsWith("ATSS", c.Assigner);

        var positives = AnchorCoverage.PositivesPerGt(DenseHeadLoss.FromConfig(cfg.Model).TargetBuilder, new Pad(32), TinyAndNormal());
        Assert.Equal(0, positives[0]);
        Assert.InRange(positives[1], 1, 9 * 5);
        Assert.Equal(positives[1] / 2.0, c.PositivesPerGtMean);
    }

    [Fact]
    public void AnchorCoverage_Retinanet_UsesMaxIou_WhichGivesEveryGtItsBestAnchor()
    {
        var cfg = Config([.. Retinanet, "data.img_scale=[320,320]"]);
        var c = AnchorCoverage.Compute(cfg.Model, cfg.Data.PadDivisor, [TinyAndNormal()], Categories);
        Assert.StartsWith("MaxIoU", c.Assigner);
        Assert.Equal(0, c.WithoutPositive);   // match_low_quality with min_pos_iou 0
    }

    [Theory]
    [InlineData("gfl")]
    [InlineData("atss")]
    [InlineData("retinanet")]
    public void AnchorCoverage_EqualsThePositivesOfTheTrainingTargets(string head)
    {
        var cfg = head == "retinanet" ? Config(Retinanet) : Config($"model.head.type={head}");
        var builder = DenseHeadLoss.FromConfig(cfg.Model).TargetBuilder;
        var pad = new Pad(cfg.Data.PadDivisor);
        ResizedImage[] images = [TinyAndNormal(), Wide()];

        // The batch as training sees it: each image's own padded shape, feature maps of the batch's padded shape.
        using var scope = NewDisposeScope();
        var padShapes = images.Select(i => (pad.Padded(i.Height), pad.Padded(i.Width))).ToArray();
        var batchPad = (padShapes.Max(p => p.Item1), padShapes.Max(p => p.Item2));
        var featmaps = builder.Anchors.FeatmapSizes(batchPad);
        var boxes = images.Select(i => tensor(i.Boxes, [i.BoxCount, 4])).ToArray();
        var labels = images.Select(i => tensor(i.Labels)).ToArray();
        var targets = builder switch
        {
            GflTargetBuilder g => g.Build(featmaps, boxes, labels, padShapes, CPU),
            MaxIouTargetBuilder m => m.Build(featmaps, boxes, labels, padShapes, CPU),
            _ => throw new InvalidOperationException(builder.GetType().Name),
        };
        var numClasses = cfg.Model.Head.NumClasses;
        long uncovered = 0;
        for (int i = 0; i < images.Length; i++)
        {
            var positive = targets.Labels[i] != numClasses;
            // Test boxes are distinct, so an assigned box target names its gt.
            var fromTargets = Enumerable.Range(0, images[i].BoxCount)
                .Select(g => (positive & (targets.BoxTargets[i] == boxes[i][g]).all(-1)).sum().item<long>()).ToArray();
            Assert.Equal(fromTargets, AnchorCoverage.PositivesPerGt(builder, pad, images[i]));
            uncovered += fromTargets.Count(p => p == 0);
        }
        var c = AnchorCoverage.Compute(cfg.Model, cfg.Data.PadDivisor, images, Categories);
        Assert.Equal(uncovered, c.WithoutPositive);
        Assert.Equal(head == "retinanet" ? 0 : 2, uncovered);   // the two tiny boxes, for the ATSS heads
        // Per image: the positives the training targets count (two images: the median is their mean, p99 and max the larger).
        var perImage = targets.PositivesPerImage.ToArray();
        Assert.All(perImage, p => Assert.True(p > 0));
        Assert.Equal(perImage.Average(), c.PositivesPerImageMedian);
        Assert.Equal(perImage.Max(), c.PositivesPerImageP99);
        Assert.Equal(perImage.Max(), c.PositivesPerImageMax);
    }

    [Fact]
    public void NearestRank_PicksTheSmallestValueWithAtLeastThatShareAtOrBelowIt()
    {
        long[] values = Enumerable.Range(1, 200).Select(i => (long)i).ToArray();
        Assert.Equal(198, AnchorCoverage.NearestRank(values, 0.99));
        Assert.Equal(100, AnchorCoverage.NearestRank(values, 0.5));
        Assert.Equal(7, AnchorCoverage.NearestRank([7], 0.99));
        Assert.Equal(0, AnchorCoverage.NearestRank([], 0.99));
    }
}
