using GflTrainer.Coco;
using GflTrainer.Config;
using GflTrainer.Data;
using GflTrainer.Data.Transforms;
using GflTrainer.Training.Losses;
using Serilog;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Data;

/// <summary><c>data.batch_shape: fixed</c>: training batches padded to one shape per orientation at the training scales.</summary>
public sealed class FixedBatchShapeTests
{
    static readonly FixedBatchShape Coco = new(1333, 800, new Pad(32));

    [Fact]
    public void The_shapes_are_the_landscape_portrait_and_square_bounds_padded()
    {
        Assert.Equal([(800, 1344), (1344, 800), (1344, 1344)], Coco.Shapes);
        // Multi-scale: the largest long and short edge any drawn scale can have.
        var range = FixedBatchShape.Of(new MultiScale([new ResizeScale(1333, 480), new ResizeScale(1333, 800)], MultiScaleMode.Range), new Pad(32));
        Assert.Equal(Coco.Shapes, range.Shapes);
        var values = FixedBatchShape.Of(new MultiScale([new ResizeScale(1000, 600), new ResizeScale(1333, 500)]), new Pad(32));
        Assert.Equal([(608, 1344), (1344, 608), (1344, 1344)], values.Shapes);
    }

    [Fact]
    public void A_batch_gets_the_first_bound_that_holds_all_its_images()
    {
        Assert.Equal((800, 1344), Coco.For([(800, 1088), (768, 1344)]));
        Assert.Equal((1344, 800), Coco.For([(1344, 800), (1088, 768)]));
        Assert.Equal((1344, 1344), Coco.For([(800, 1088), (1088, 800)]));   // orientations mixed (no aspect grouping)
        Assert.Equal((800, 1344), Coco.For([(800, 800)]));
        // Not from a keep-ratio resize at these scales: never smaller than the images.
        Assert.Equal((1408, 800), Coco.For([(1408, 800), (64, 64)]));
    }

    /// <summary>Whatever the image size, the keep-ratio resize at the training scale leaves a landscape image within the
    /// landscape bound and a portrait or square one within the portrait bound, so an aspect-grouped batch never needs
    /// the square.</summary>
    [Theory]
    [InlineData(1333, 800, 32)]
    [InlineData(512, 512, 32)]
    [InlineData(1000, 600, 128)]
    public void Every_resized_image_fits_the_bound_of_its_orientation(int longEdge, int shortEdge, int divisor)
    {
        var pad = new Pad(divisor);
        var shape = new FixedBatchShape(longEdge, shortEdge, pad);
        var rng = new Random(longEdge + shortEdge);
        for (int i = 0; i < 20000; i++)
        {
            int w = rng.Next(1, 5000), h = rng.Next(1, 5000);
            if (i % 5 == 0) h = w;
            var (rw, rh) = Resize.RescaleSize(w, h, new ResizeScale(longEdge, shortEdge));
            var padded = (pad.Padded(rh), pad.Padded(rw));
            Assert.Equal(shape.Shapes[w > h ? 0 : 1], shape.For([padded, w > h ? shape.Shapes[0] : shape.Shapes[1]]));
        }
    }

    [Fact]
    public void The_collator_pads_to_the_fixed_shape_and_builds_the_targets_for_it()
    {
        using var scope = NewDisposeScope();
        var eval = DetectionTransform.Eval(new ResizeScale(96, 64));
        var pad = new Pad(16);
        // 50x40 -> 80x64 and 30x30 -> 64x64: their own largest shape is (64, 80), the landscape bound (64, 96).
        var a = eval.Apply(TransformTests.Gradient(50, 40), new DatasetEntry(1, "a", 50, 40, [1, 1, 30, 20], [0], []), new Random(0));
        var b = eval.Apply(TransformTests.Gradient(30, 30), new DatasetEntry(2, "b", 30, 30, [2, 2, 20, 25], [1], []), new Random(0));
        var collator = new BatchCollator(new Normalize(), pad, CPU, new FixedBatchShape(96, 64, pad));
        Assert.Equal((64, 80), new BatchCollator(new Normalize(), pad, CPU).BatchShape([a, b]));
        Assert.Equal((64, 96), collator.BatchShape([a, b]));
        using var batch = collator.Collate([a, b]);
        Assert.Equal(new long[] { 2, 3, 64, 96 }, batch.Images.shape);
        Assert.Equal(0f, batch.Images[0, .., .., 80..].abs().sum().item<float>());
        Assert.Equal(0f, batch.Images[1, .., .., 64..].abs().sum().item<float>());
        Assert.NotEqual(0f, batch.Images[0, .., .., 79].abs().sum().item<float>());
        // Each image keeps its own padded shape (its valid anchors), only the batch grows.
        Assert.Equal((64, 80), (batch.Metas[0].PadHeight, batch.Metas[0].PadWidth));
        // A portrait image (20x40 -> 32x64) gets the portrait bound.
        var portrait = eval.Apply(TransformTests.Gradient(20, 40), new DatasetEntry(3, "c", 20, 40, [], [], []), new Random(0));
        Assert.Equal((96, 64), collator.BatchShape([portrait]));

        var builder = Tests.Training.Losses.HostTargetsTests.Builder(HeadType.Gfl);
        using var targets = collator.Targets(new HostTargets(builder), [a, b]);
        Assert.Equal(builder.Anchors.FeatmapSizes((64, 96)), targets.FeatmapSizes);
    }

    /// <summary>The training loader of <c>data.batch_shape: fixed</c> pads every batch to its bound; the default pads to
    /// the batch's own images (the synthetic images are 64x64, so 64x64 batches).</summary>
    [Fact]
    public void The_training_loader_of_the_config_pads_to_the_fixed_shape()
    {
        using var dir = new TempDir();
        SyntheticShapes.Write(dir.Path, new SyntheticShapesOptions { Seed = 5, TrainImages = 6, ValImages = 0, ImageSize = 64, MinSide = 8, MaxSide = 40 });
        var ds = CocoDataset.ForTraining(CocoAnnotations.Load(Path.Combine(dir.Path, "annotations", "instances_train.json")), Path.Combine(dir.Path, "images"));
        var options = new LoaderOptions { BatchSize = 2, Workers = 0, Seed = 1 };
        var log = new LoggerConfiguration().CreateLogger();
        foreach (var (mode, expected) in new[] { (BatchShapeMode.Max, new long[] { 2, 3, 64, 64 }), (BatchShapeMode.Fixed, new long[] { 2, 3, 64, 96 }) })
        {
            var data = new DataConfig { ImgScale = [96, 64], BatchShape = mode };
            var batches = DataPipelineFactory.CreateTrainLoader(data, ds, options, CPU, log).Epoch(0).ToList();
            Assert.Equal(3, batches.Count);
            Assert.All(batches, b => { using (b) Assert.Equal(expected, b.Images.shape); });
        }
    }
}
