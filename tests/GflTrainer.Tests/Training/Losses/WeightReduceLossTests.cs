using GflTrainer.Runtime;
using GflTrainer.Training.Losses;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Training.Losses;

/// <summary>The box losses' divisor stays on the device in one process (no host sync) and divides exactly as the
/// number mmdetection reads with .item() would; over ranks it is the global sum clamped at 1. The classification
/// normaliser as a device tensor scales and divides exactly as the host number did.</summary>
public sealed class WeightReduceLossTests
{
    sealed class TwoRanks(double otherSum) : ICollective
    {
        public int Rank => 0;
        public int WorldSize => 2;
        public void AllReduceMean(IReadOnlyList<Tensor> tensors)
        {
            foreach (var t in tensors) t.add_(otherSum).div_(2);
        }
        public double[] AllReduceMean(double[] values) => values.Select(v => (v + otherSum) / 2).ToArray();
        public void StartAllReduceMean(Tensor contiguous) => throw new NotSupportedException();
        public void WaitAllReduces() { }
        public void Broadcast(IReadOnlyList<Tensor> tensors, int root = 0) { }
        public byte[][] AllGather(byte[] mine) => [mine, []];
        public void Barrier() { }
        public void Dispose() { }
    }

    [Theory]
    [InlineData(0.37f)]    // clamped to 1
    [InlineData(7.123f)]
    [InlineData(1234.5677f)]
    public void BoxAvgFactor_DividesBitForBitAsTheHostNumber(float sum)
    {
        using var scope = NewDisposeScope();
        manual_seed(3);
        var box = rand(5) * 100;
        var factor = WeightReduceLoss.BoxAvgFactor(tensor(sum), null);
        Assert.Equal(0, factor.dim());
        var expected = box / (double)Math.Max(sum, 1f);
        Assert.True((box / factor).equal(expected).all().item<bool>());
    }

    [Fact]
    public void BoxAvgFactor_OverRanks_IsTheGlobalSumClampedAtOne()
    {
        using var scope = NewDisposeScope();
        Assert.Equal(2.5f, WeightReduceLoss.BoxAvgFactor(tensor(3f), new TwoRanks(2)).item<float>());   // (3 + 2) / 2
        Assert.Equal(0.5f, WeightReduceLoss.BoxAvgFactor(tensor(0.2f), new TwoRanks(0.1)).item<float>());   // global 0.3 < 1: 1 / W
    }

    /// <summary>The losses' normalisers became 0-d device tensors (so that ranks average them without a host read). libtorch
    /// multiplies and divides a float32 tensor by a host number through its float32 cast, so the float64 scale cast to
    /// float32 gives the same bits: checked for QFL's and Focal Loss's scale and ATSS's centerness divisor.</summary>
    [Theory]
    [InlineData(1.0, 3.0)]
    [InlineData(1.0, 7.5)]
    [InlineData(0.25, 123.0)]
    [InlineData(2.0, 1e-3)]
    [InlineData(0.3, 7.0)]
    [InlineData(0.7, 11.0)]
    public void A_normaliser_tensor_scales_and_divides_bit_for_bit_as_the_host_number(double lossWeight, double avgFactor)
    {
        using var scope = NewDisposeScope();
        manual_seed(5);
        var x = randn(1000) * 37;
        var factor = WeightReduceLoss.AvgFactorOn(avgFactor, CPU);
        Assert.Equal(ScalarType.Float64, factor.dtype);
        Assert.Equal(0, factor.dim());
        var byNumber = x * (lossWeight / (avgFactor + WeightReduceLoss.Float32Eps));
        Assert.True((x * WeightReduceLoss.Scale(lossWeight, factor, ScalarType.Float32)).equal(byNumber).all().item<bool>());
        var divided = x / (avgFactor + WeightReduceLoss.Float32Eps);
        Assert.True((x / WeightReduceLoss.Divisor(factor, ScalarType.Float32)).equal(divided).all().item<bool>());
        // Over ranks: the mean of the ranks' host numbers, on the device.
        Assert.Equal((avgFactor + 5) / 2, WeightReduceLoss.AvgFactorOf(avgFactor, CPU, new TwoRanks(5)).item<double>());
        Assert.Equal(avgFactor, WeightReduceLoss.AvgFactorOf(avgFactor, CPU, null).item<double>());
    }

    /// <summary>Targets built ahead carry their normaliser as a tensor: the loss takes it as it is in one process, and over
    /// ranks a copy averaged in place (the targets' own tensor, which on the CPU is the loader's memory, unchanged);
    /// targets without it get the fill of the number.</summary>
    [Fact]
    public void The_normaliser_of_targets_built_ahead_is_their_tensor_and_averaged_on_a_copy()
    {
        using var scope = NewDisposeScope();
        var builder = HostTargetsTests.Builder(GflTrainer.Config.HeadType.Gfl);
        var (boxes, labels, pads) = HostTargetsTests.Batch(2);
        using var host = new HostTargets(builder).Build(boxes, labels, pads, (96, 128));
        var targets = host.ToDevice(CPU);
        var made = targets.ClassificationNormaliser!;
        Assert.Equal(targets.ClassificationAvgFactor, made.item<double>());
        Assert.Equal(ScalarType.Float64, made.dtype);
        Assert.Equal(0, made.dim());
        Assert.Equal(GflTrainer.Runtime.Native.TensorData.FirstElement(made), GflTrainer.Runtime.Native.TensorData.FirstElement(WeightReduceLoss.AvgFactorOf(targets, CPU, null)));
        var averaged = WeightReduceLoss.AvgFactorOf(targets, CPU, new TwoRanks(5));
        Assert.Equal((targets.ClassificationAvgFactor + 5) / 2, averaged.item<double>());
        Assert.Equal(targets.ClassificationAvgFactor, made.item<double>());
        var (gtBoxes, gtLabels) = HostTargetsTests.Tensors(boxes, labels);
        var inStep = builder.Build(builder.Anchors.FeatmapSizes((96, 128)), gtBoxes, gtLabels, pads, CPU);
        Assert.Null(inStep.ClassificationNormaliser);
        Assert.Equal(targets.ClassificationAvgFactor, WeightReduceLoss.AvgFactorOf(inStep, CPU, null).item<double>());
    }
}
