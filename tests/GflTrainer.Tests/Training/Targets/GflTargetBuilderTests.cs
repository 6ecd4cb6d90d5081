using GflTrainer.Model;
using GflTrainer.Tests.Support;
using GflTrainer.Training;
using GflTrainer.Training.Targets;
using Xunit;
using GflTrainer.Benchmarks;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Training.Targets;

public class GflTargetBuilderTests
{
    private static readonly int[] Strides = { 8, 16, 32, 64, 128 };

    private static (GflTargetBuilder Builder, (int H, int W)[] Sizes, IReadOnlyList<Tensor> Boxes, IReadOnlyList<Tensor> Labels, (int H, int W)[] Pads) Load()
    {
        var f = GflFixture.Load("head_loss", "own_pad_shapes.json");
        var builder = new GflTargetBuilder(new AnchorGenerator(Strides), new AtssAssigner(), f.Params.GetProperty("num_classes").GetInt32());
        return (builder, GflFixture.Shapes(f.Inputs.GetProperty("featmap_sizes")),
            GflFixture.ToTensors(f.Inputs.GetProperty("gt_bboxes")), GflFixture.ToTensors(f.Inputs.GetProperty("gt_labels")),
            GflFixture.Shapes(f.Params.GetProperty("image_pad_shapes")));
    }

    [Fact]
    public void Build_WithIgnoredBoxes_ZeroesOnlyNegativesWhoseCentreIsInside()
    {
        using var scope = NewDisposeScope();
        var (builder, sizes, boxes, labels, pads) = Load();
        var reference = builder.Build(sizes, boxes, labels, pads, CPU);
        var noIgnored = builder.Build(sizes, boxes, labels, pads, CPU, new[] { zeros(0, 4), zeros(0, 4) });
        TensorAssert.Equal(reference.LabelWeights, noIgnored.LabelWeights, "empty ignored lists change nothing");

        // A crowd region over image 0's top-left corner.
        var crowd = tensor(new float[] { 0, 0, 60, 50 }).reshape(1, 4);
        var withCrowd = builder.Build(sizes, boxes, labels, pads, CPU, new[] { crowd, zeros(0, 4) });
        TensorAssert.Equal(reference.Labels, withCrowd.Labels, "labels unchanged");
        var centers = AnchorGenerator.Centers(reference.Anchors);
        var inside = (centers[TensorIndex.Colon, 0] > 0) & (centers[TensorIndex.Colon, 0] < 60) &
                     (centers[TensorIndex.Colon, 1] > 0) & (centers[TensorIndex.Colon, 1] < 50);
        var negative = reference.Labels[0] == builder.NumClasses;
        var expected0 = reference.LabelWeights[0] * (~(inside & negative)).to(float32);
        Assert.True((inside & negative).sum().item<long>() > 0);
        TensorAssert.Equal(expected0, withCrowd.LabelWeights[0], "image 0 weights");
        TensorAssert.Equal(reference.LabelWeights[1], withCrowd.LabelWeights[1], "image 1 weights");
    }

    [Fact]
    public void Build_InvalidAnchors_AreBackgroundWithZeroWeight()
    {
        using var scope = NewDisposeScope();
        var (builder, sizes, boxes, labels, pads) = Load();
        var t = builder.Build(sizes, boxes, labels, pads, CPU);
        var invalid = ~t.ValidFlags;
        Assert.True(invalid.any().item<bool>(), "the fixture's image 1 has invalid anchors");
        Assert.True((t.Labels.masked_select(invalid) == builder.NumClasses).all().item<bool>());
        Assert.Equal(0f, t.LabelWeights.masked_select(invalid).abs().sum().item<float>());
    }

    [Fact]
    [Trait("Category", "Slow")]
    public void TargetsBenchmark_RunsOnCpu()
    {
        var ms = Assert.Single(TargetsBenchmark.Run(CPU, 1));
        Assert.True(ms > 0 && double.IsFinite(ms));
    }
}
