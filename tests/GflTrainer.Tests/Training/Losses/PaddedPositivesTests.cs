using GflTrainer.Config;
using GflTrainer.Model;
using GflTrainer.Tests.Support;
using GflTrainer.Training.Losses;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Training.Losses;

/// <summary>Positives padded to a fixed capacity (<see cref="HostTargets"/>' positiveCapacity, the shapes a CUDA graph
/// replays, issue 21) train as the real ones: the same losses and gradients up to the sums' float rounding, the same
/// scattered targets bit for bit, and tensors whose shapes no longer depend on the batch's positives.</summary>
public sealed class PaddedPositivesTests
{
    [Fact]
    public void Rows_are_padded_with_the_first_positive_and_masked_only_between_one_and_the_capacity()
    {
        using var scope = NewDisposeScope();
        var rows = tensor(new long[] { 5, 9, 12 });
        var (padded, mask) = HostTargets.Pad(rows, 5);
        Assert.Equal(new long[] { 5, 9, 12, 5, 5 }, padded.data<long>().ToArray());
        Assert.Equal(new float[] { 1, 1, 1, 0, 0 }, mask!.data<float>().ToArray());
        var (full, fullMask) = HostTargets.Pad(rows, 3);
        Assert.Equal(new long[] { 5, 9, 12 }, full.data<long>().ToArray());
        Assert.Equal(new float[] { 1, 1, 1 }, fullMask!.data<float>().ToArray());
        // Over the capacity, none, or padding off: the rows as they are, no mask (a graph runner runs such a batch uncaptured).
        Assert.Null(HostTargets.Pad(rows, 2).Mask);
        Assert.Null(HostTargets.Pad(rows, 0).Mask);
        Assert.Null(HostTargets.Pad(zeros(0, dtype: int64), 4).Mask);
        Assert.Throws<ArgumentOutOfRangeException>(() => new HostTargets(HostTargetsTests.Builder(HeadType.Gfl), -1));
    }

    public static TheoryData<HeadType, ClsLossType, int> Heads => new()
    {
        { HeadType.Gfl, ClsLossType.Qfl, 1 },
        { HeadType.Gfl, ClsLossType.Qfl, 2 },
        { HeadType.Gfl, ClsLossType.Focal, 3 },
        { HeadType.Atss, ClsLossType.Focal, 4 },
        { HeadType.Retinanet, ClsLossType.Focal, 5 },
    };

    [Theory]
    [MemberData(nameof(Heads))]
    public void Padded_positives_give_the_losses_and_gradients_of_the_real_ones(HeadType head, ClsLossType cls, int seed)
    {
        using var scope = NewDisposeScope();
        var model = Model(head, cls);
        var loss = DenseHeadLoss.FromConfig(model);
        var (boxes, labels, pads) = HostTargetsTests.Batch(seed);
        using var plain = new HostTargets(loss.TargetBuilder).Build(boxes, labels, pads, (96, 128));
        var count = plain.PositiveRowCount;
        Assert.True(count > 1, "the batch has positives");
        const int Spare = 37;
        using var padded = new HostTargets(loss.TargetBuilder, (int)count + Spare).Build(boxes, labels, pads, (96, 128));
        Assert.True(padded.PositivesPadded);
        Assert.Equal(count + Spare, padded.PositiveRowCount);

        var featmaps = loss.TargetBuilder.Anchors.FeatmapSizes((96, 128));
        var (expected, expectedGrads) = LossAndGradients(loss, model, featmaps, plain, seed, boxes, labels, pads);
        var (actual, actualGrads) = LossAndGradients(loss, model, featmaps, padded, seed, boxes, labels, pads);

        // The pads add exact zeros; only the order of the positives' sums changes with their length (float rounding).
        Assert.Equal(expected.Terms.Select(t => t.Name), actual.Terms.Select(t => t.Name));
        foreach (var ((name, e), (_, a)) in expected.Terms.Zip(actual.Terms))
            TensorAssert.Close(e, a, 1e-7, 1e-6, $"{head} {name}");
        TensorAssert.Close(expected.Total, actual.Total, 1e-7, 1e-6, $"{head} total");
        Assert.Equal(expectedGrads.Count, actualGrads.Count);
        for (int i = 0; i < expectedGrads.Count; i++)
            TensorAssert.Close(expectedGrads[i], actualGrads[i], 1e-9, 1e-5, $"{head} gradient of output {i}");
        if (expected is LossBreakdown g && actual is LossBreakdown p)
        {
            // The quality targets are scattered (a pad writes its positive's own IoU there): bit for bit.
            TensorAssert.Equal(g.QualityTargets, p.QualityTargets, "quality targets");
            TensorAssert.Equal(g.ClsAvgFactor, p.ClsAvgFactor, "classification normaliser");
            Assert.Equal(g.Positives.Select(l => l.Index.shape[0]), p.Positives.Select(l => l.Index.shape[0]));
            foreach (var (e, a) in g.Positives.Zip(p.Positives))
            {
                TensorAssert.Equal(e.Index, a.Index, "positive index");
                TensorAssert.Equal(e.Quality, a.Quality, "positive quality");
            }
        }
    }

    /// <summary>What a captured graph needs: two batches with different numbers of positives give the step tensors of the
    /// same shapes once padded, and a batch over the capacity keeps its own.</summary>
    [Fact]
    public void Padded_batches_of_one_image_shape_have_the_same_positive_shapes_whatever_their_positives()
    {
        using var scope = NewDisposeScope();
        var builder = HostTargetsTests.Builder(HeadType.Gfl);
        var counts = new List<long>();
        var shapes = new List<long>();
        foreach (var seed in new[] { 1, 2, 3, 6 })
        {
            var (boxes, labels, pads) = HostTargetsTests.Batch(seed);
            using var plain = new HostTargets(builder).Build(boxes, labels, pads, (96, 128));
            counts.Add(plain.PositiveRowCount);
            using var padded = new HostTargets(builder, 400).Build(boxes, labels, pads, (96, 128));
            var onDevice = padded.ToDevice(CPU);
            shapes.Add(onDevice.PositiveRows!.shape[0]);
            Assert.Equal(400, onDevice.PositiveMask!.shape[0]);
            Assert.Equal(plain.PositiveRowCount, onDevice.PositiveCount);
            Assert.Equal(onDevice.PositiveCount, (long)onDevice.PositiveMask.sum().item<float>());
            Assert.Equal(onDevice.ClassificationAvgFactor, onDevice.ClassificationNormaliser!.item<double>());
        }
        Assert.True(counts.Distinct().Count() > 1, $"the batches differ in positives: {string.Join(", ", counts)}");
        Assert.All(shapes, s => Assert.Equal(400, s));

        var (b, l, p) = HostTargetsTests.Batch(1);
        using var over = new HostTargets(builder, (int)counts[0] - 1).Build(b, l, p, (96, 128));
        Assert.False(over.PositivesPadded);
        Assert.Equal(counts[0], over.PositiveRowCount);
    }

    static ModelConfig Model(HeadType head, ClsLossType cls)
    {
        var h = head == HeadType.Retinanet
            ? new HeadConfig { Type = head, NumClasses = 4, OctaveBaseScale = 4, ScalesPerOctave = 3, Ratios = [0.5, 1.0, 2.0] }
            : new HeadConfig { Type = head, NumClasses = 4 };
        return new ModelConfig { Head = h with { Loss = h.Loss with { Cls = cls } } };
    }

    // The loss of seeded head outputs on targets built ahead, and its gradients with respect to every output.
    static (IHeadLosses Losses, List<Tensor> Gradients) LossAndGradients(IDenseHeadLoss loss, ModelConfig model,
        IReadOnlyList<(int H, int W)> featmaps, HostBatchTargets host, int seed, List<float[]> boxes, List<long[]> labels,
        List<(int H, int W)> pads)
    {
        var generator = new Generator().manual_seed(seed);
        var anchors = loss.TargetBuilder.Anchors.AnchorsPerLocation;
        long boxChannels = model.Head.Type == HeadType.Gfl ? 4 * (model.Head.RegMax + 1) : 4 * anchors;
        Tensor Output(long channels, (int H, int W) f) => randn([3, channels, f.H, f.W], generator: generator).requires_grad_(true);
        var cls = featmaps.Select(f => Output(model.Head.NumClasses * anchors, f)).ToList();
        var box = featmaps.Select(f => Output(boxChannels, f)).ToList();
        var ctr = model.Head.Type == HeadType.Atss ? featmaps.Select(f => Output(anchors, f)).ToList() : null;
        var outputs = new HeadOutputs(cls, box) { Centerness = ctr };
        var (gtBoxes, gtLabels) = HostTargetsTests.Tensors(boxes, labels);
        var losses = loss.Compute(outputs, gtBoxes, gtLabels, pads, host.ToDevice(CPU));
        losses.Total.backward();
        return (losses, cls.Concat(box).Concat(ctr ?? []).Select(t => t.grad!).ToList());
    }
}
