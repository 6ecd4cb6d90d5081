using GflTrainer.Runtime;
using GflTrainer.Training.Losses;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Training.Losses;

/// <summary>The box losses' divisor stays on the device in one process (no host sync) and divides exactly as the
/// number mmdetection reads with .item() would; over ranks it is the global sum clamped at 1.</summary>
public sealed class WeightReduceLossTests
{
    sealed class TwoRanks(double otherSum) : ICollective
    {
        public int Rank => 0;
        public int WorldSize => 2;
        public void AllReduceMean(IReadOnlyList<Tensor> tensors) => throw new NotSupportedException();
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
}
