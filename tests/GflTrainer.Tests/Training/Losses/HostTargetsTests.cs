using GflTrainer.Config;
using GflTrainer.Training.Losses;
using GflTrainer.Training.Targets;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Training.Losses;

/// <summary>Targets built on the host ahead of the step (issue 21, <c>runtime.targets: loader</c>) are the step's own.</summary>
public sealed class HostTargetsTests
{
    internal static IAnchorTargetBuilder Builder(HeadType head) => DenseHeadLoss.FromConfig(new ModelConfig
    {
        Head = head == HeadType.Retinanet
            ? new HeadConfig { Type = head, NumClasses = 4, OctaveBaseScale = 4, ScalesPerOctave = 3, Ratios = [0.5, 1.0, 2.0] }
            : new HeadConfig { Type = head, NumClasses = 4 },
    }).TargetBuilder;

    /// <summary>Three images of different padded shapes in one (96, 128) batch (so each has invalid anchors of its own),
    /// one without ground truth, boxes drawn inside each image.</summary>
    internal static (List<float[]> Boxes, List<long[]> Labels, List<(int H, int W)> Pads) Batch(int seed)
    {
        var rng = new Random(seed);
        var pads = new List<(int H, int W)> { (96, 128), (64, 128), (96, 64) };
        int[] counts = [6, 0, 3];
        var boxes = new List<float[]>();
        var labels = new List<long[]>();
        for (int i = 0; i < pads.Count; i++)
        {
            var b = new float[counts[i] * 4];
            for (int g = 0; g < counts[i]; g++)
            {
                float x1 = rng.Next(0, pads[i].W - 12), y1 = rng.Next(0, pads[i].H - 12);
                b[4 * g] = x1; b[4 * g + 1] = y1;
                b[4 * g + 2] = Math.Min(pads[i].W - 1, x1 + 6 + rng.Next(0, 60));
                b[4 * g + 3] = Math.Min(pads[i].H - 1, y1 + 6 + rng.Next(0, 60));
            }
            boxes.Add(b);
            labels.Add(Enumerable.Range(0, counts[i]).Select(_ => (long)rng.Next(0, 4)).ToArray());
        }
        return (boxes, labels, pads);
    }

    /// <summary>A <see cref="Batch"/>'s ground truth as the step takes it: per image (G_i, 4) boxes and (G_i,) labels.</summary>
    internal static (List<Tensor> Boxes, List<Tensor> Labels) Tensors(List<float[]> boxes, List<long[]> labels) =>
        (boxes.Select(b => tensor(b, [b.Length / 4, 4])).ToList(), labels.Select(l => tensor(l, [l.Length])).ToList());

    [Theory]
    [InlineData(HeadType.Gfl, 1)]
    [InlineData(HeadType.Gfl, 2)]
    [InlineData(HeadType.Atss, 3)]
    [InlineData(HeadType.Retinanet, 4)]
    [InlineData(HeadType.Retinanet, 5)]
    public void Host_targets_are_the_builders_bit_for_bit_with_the_positives_the_loss_would_find(HeadType head, int seed)
    {
        using var scope = NewDisposeScope();
        var builder = Builder(head);
        var (boxes, labels, pads) = Batch(seed);
        using var host = new HostTargets(builder).Build(boxes, labels, pads, (96, 128));

        var featmaps = builder.Anchors.FeatmapSizes((96, 128));
        Assert.Equal([(12, 16), (6, 8), (3, 4), (2, 2), (1, 1)], featmaps);
        var (gtBoxes, gtLabels) = Tensors(boxes, labels);
        var expected = builder.Build(featmaps, gtBoxes, gtLabels, pads, CPU);
        using var actual = host.ToDevice(CPU);

        Assert.Equal(featmaps, actual.FeatmapSizes);
        Assert.Equal(expected.AnchorsPerLevel, actual.AnchorsPerLevel);
        Assert.Equal(expected.PositivesPerImage, actual.PositivesPerImage);
        Assert.True(expected.PositivesPerImage[0] > 0 && expected.PositivesPerImage[1] == 0 && expected.PositivesPerImage[2] > 0);
        foreach (var (name, e, a) in new[] { ("anchors", expected.Anchors, actual.Anchors), ("valid", expected.ValidFlags, actual.ValidFlags),
                     ("labels", expected.Labels, actual.Labels), ("weights", expected.LabelWeights, actual.LabelWeights),
                     ("boxes", expected.BoxTargets, actual.BoxTargets) })
        {
            Assert.Equal(e.shape, a.shape);
            Assert.Equal(e.dtype, a.dtype);
            Assert.True(e.equal(a).all().item<bool>(), name);
        }
        // Images 1 and 2 have invalid anchors of their own, and they are background with weight 0.
        Assert.False(actual.ValidFlags[1].all().item<bool>());
        Assert.False(actual.ValidFlags[2].all().item<bool>());
        // The positives the loss would find with its nonzero over the level-major rows.
        var found = new LevelRows(expected, 3).Positives(builder.NumClasses);
        Assert.NotNull(actual.PositiveRows);
        Assert.Equal(found.shape, actual.PositiveRows!.shape);
        Assert.True(found.equal(actual.PositiveRows!).all().item<bool>());
        Assert.True(new LevelRows(actual, 3).Positives(builder.NumClasses).equal(found).all().item<bool>());
    }

    /// <summary>As the loader uses them: built on a worker thread inside its own dispose scope, taken to the step's
    /// device on another thread, then released; the step's targets stay valid and equal to the builder's.</summary>
    [Fact]
    public void Host_targets_cross_threads_and_outlive_their_release_as_the_steps()
    {
        using var scope = NewDisposeScope();
        var builder = Builder(HeadType.Retinanet);
        var (boxes, labels, pads) = Batch(4);
        var host = Task.Run(() =>
        {
            using var workerScope = NewDisposeScope();
            return new HostTargets(builder).Build(boxes, labels, pads, (96, 128));
        }).Result;
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var onDevice = host.ToDevice(CPU);
        host.Dispose();
        var (gtBoxes, gtLabels) = Tensors(boxes, labels);
        var expected = builder.Build(builder.Anchors.FeatmapSizes((96, 128)), gtBoxes, gtLabels, pads, CPU);
        Assert.True(expected.BoxTargets.equal(onDevice.BoxTargets).all().item<bool>());
        Assert.True(expected.Labels.equal(onDevice.Labels).all().item<bool>());
        Assert.True(expected.Anchors.equal(onDevice.Anchors).all().item<bool>());
        Assert.True(new LevelRows(expected, 3).Positives(builder.NumClasses).equal(onDevice.PositiveRows!).all().item<bool>());
    }

    [Fact]
    public void Targets_laid_out_for_other_feature_maps_are_not_used()
    {
        using var scope = NewDisposeScope();
        var builder = Builder(HeadType.Gfl);
        var (boxes, labels, pads) = Batch(7);
        using var host = new HostTargets(builder).Build(boxes, labels, pads, (96, 128)).ToDevice(CPU);
        Assert.Same(host, GflTargets.For(host, 3, builder.Anchors.FeatmapSizes((96, 128))));
        Assert.Null(GflTargets.For(host, 3, builder.Anchors.FeatmapSizes((128, 128))));
        Assert.Null(GflTargets.For(host, 2, builder.Anchors.FeatmapSizes((96, 128))));
        Assert.Null(GflTargets.For(null, 3, builder.Anchors.FeatmapSizes((96, 128))));
        // Hand-made targets say nothing about their layout: never taken for a batch's.
        Assert.Null(GflTargets.For(host with { FeatmapSizes = null }, 3, builder.Anchors.FeatmapSizes((96, 128))));
    }

    /// <summary>The loader lays targets out for <see cref="GflTrainer.Model.AnchorGenerator.FeatmapSizes"/> of the padded batch; the
    /// network must give exactly those maps (ceil(pad / stride) through every stride-2 layer), for pads that are multiples
    /// of 32 and for others (data.pad_divisor), or targets built ahead would never be used.</summary>
    [Theory]
    [InlineData(HeadType.Gfl, 96, 128)]
    [InlineData(HeadType.Gfl, 800, 1344)]
    [InlineData(HeadType.Gfl, 100, 150)]
    [InlineData(HeadType.Retinanet, 96, 160)]
    [InlineData(HeadType.Retinanet, 81, 47)]
    public void Feature_map_sizes_from_the_pad_are_the_networks(HeadType head, int h, int w)
    {
        using var scope = NewDisposeScope();
        var cfg = new ModelConfig
        {
            Backbone = new BackboneConfig { Depth = 18, BaseChannels = 8, FrozenStages = -1, NormEval = false },
            Neck = new NeckConfig { OutChannels = 16 },
            Head = new HeadConfig { Type = head, NumClasses = 3, FeatChannels = 16, StackedConvs = 1, NormGroups = 4 },
        };
        using var model = GflTrainer.Model.DetectorFactory.CreateDetector(cfg);
        model.eval();
        using var noGrad = no_grad();
        var outputs = model.forward(zeros(1, 3, h, w));
        var actual = outputs.ClassScores.Select(t => ((int)t.shape[2], (int)t.shape[3])).ToArray();
        Assert.Equal(actual, DenseHeadLoss.FromConfig(cfg).TargetBuilder.Anchors.FeatmapSizes((h, w)));
    }
}
