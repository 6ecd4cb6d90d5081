using GflTrainer.Runtime;
using GflTrainer.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Training;

/// <summary>The data-parallel seam: <see cref="OptimizerStep"/> hands the gradients to the collective after backward
/// and steps on what comes back, as DDP's all-reduce does.</summary>
public sealed class CollectiveSeamTests
{
    /// <summary>Two ranks where the other rank's gradients are all zero: the mean halves ours.</summary>
    sealed class PeerWithZeroGradients : ICollective
    {
        public int Calls;
        public int Rank => 0;
        public int WorldSize => 2;
        public void AllReduceMean(IReadOnlyList<Tensor> tensors) { Calls++; foreach (var t in tensors) t.mul_(0.5); }
        public double[] AllReduceMean(double[] values) => values.Select(v => v / 2).ToArray();
        public void StartAllReduceMean(Tensor contiguous) => throw new NotSupportedException("no stages in this test");
        public void WaitAllReduces() { }
        public void Broadcast(IReadOnlyList<Tensor> tensors, int root = 0) { }
        public byte[][] AllGather(byte[] mine) => [mine, []];
        public void Barrier() { }
        public void Dispose() { }
    }

    [Fact]
    public void OptimizerStep_AveragesGradientsThroughTheCollective()
    {
        using var scope = NewDisposeScope();
        manual_seed(4);
        var single = nn.Linear(3, 2);
        var pair = nn.Linear(3, 2);
        pair.load_state_dict(single.state_dict());
        var x = randn(5, 3);

        var sgdSingle = new Sgd(single.named_parameters().Select(p => (p.name, (Tensor)p.parameter)), 0.1, 0, 0);
        new OptimizerStep(sgdSingle, null, null).Run(single.forward(x).sum() * 0.5);   // half the loss: half the gradient

        var collective = new PeerWithZeroGradients();
        var sgdPair = new Sgd(pair.named_parameters().Select(p => (p.name, (Tensor)p.parameter)), 0.1, 0, 0);
        var outcome = new OptimizerStep(sgdPair, null, null, collective).Run(pair.forward(x).sum());

        Assert.True(outcome.Applied);
        Assert.Equal(1, collective.Calls);
        Assert.True(single.weight!.allclose(pair.weight!, rtol: 0, atol: 1e-7));
        Assert.True(single.bias!.allclose(pair.bias!, rtol: 0, atol: 1e-7));
    }

    [Fact]
    public void SingleProcess_IsTheIdentity()
    {
        using var scope = NewDisposeScope();
        var t = tensor(new float[] { 1, 2, 3 });
        SingleProcessCollective.Instance.AllReduceMean([t]);
        Assert.Equal(new float[] { 1, 2, 3 }, t.data<float>().ToArray());
        Assert.Equal(new[] { 1.5, 2.5 }, SingleProcessCollective.Instance.AllReduceMean([1.5, 2.5]));
        Assert.Equal((0, 1), (SingleProcessCollective.Instance.Rank, SingleProcessCollective.Instance.WorldSize));
    }
}
