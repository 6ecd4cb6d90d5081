using GflTrainer.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Training;

public class SgdTests
{
    [Fact]
    public void MatchesTorchSharpSgdUpdateBitForBit()
    {
        using var scope = NewDisposeScope();
        manual_seed(1);
        var a = nn.Linear(5, 3); var b = nn.Linear(5, 3);
        b.load_state_dict(a.state_dict());
        var ours = new Sgd(a.named_parameters().Select(p => (p.name, (Tensor)p.parameter)), 0.1, 0.9, 1e-4);
        var theirs = optim.SGD(b.parameters(), 0.1, momentum: 0.9, weight_decay: 1e-4);
        for (int i = 0; i < 3; i++)
        {
            var x = randn(4, 5);
            ours.ZeroGrad(); a.forward(x).pow(2).sum().backward(); ours.Step();
            theirs.zero_grad(); b.forward(x).pow(2).sum().backward(); theirs.step();
        }
        Assert.True(a.weight!.equal(b.weight!).all().item<bool>());
        Assert.True(a.bias!.equal(b.bias!).all().item<bool>());
    }

    /// <summary>torch.optim.SGD(nesterov=True): p -= lr * (d + m * buf) after the buffer update.</summary>
    [Fact]
    public void Nesterov_MatchesTorchSharpSgdUpdateBitForBit()
    {
        using var scope = NewDisposeScope();
        manual_seed(3);
        var a = nn.Linear(5, 3); var b = nn.Linear(5, 3); var plain = nn.Linear(5, 3);
        b.load_state_dict(a.state_dict()); plain.load_state_dict(a.state_dict());
        var ours = new Sgd(a.named_parameters().Select(p => (p.name, (Tensor)p.parameter)), 0.1, 0.9, 1e-4, nesterov: true);
        var withoutNesterov = new Sgd(plain.named_parameters().Select(p => (p.name, (Tensor)p.parameter)), 0.1, 0.9, 1e-4);
        var theirs = optim.SGD(b.parameters(), 0.1, momentum: 0.9, weight_decay: 1e-4, nesterov: true);
        for (int i = 0; i < 3; i++)
        {
            var x = randn(4, 5);
            ours.ZeroGrad(); a.forward(x).pow(2).sum().backward(); ours.Step();
            withoutNesterov.ZeroGrad(); plain.forward(x).pow(2).sum().backward(); withoutNesterov.Step();
            theirs.zero_grad(); b.forward(x).pow(2).sum().backward(); theirs.step();
        }
        Assert.True(a.weight!.equal(b.weight!).all().item<bool>());
        Assert.True(a.bias!.equal(b.bias!).all().item<bool>());
        Assert.False(a.weight!.equal(plain.weight!).all().item<bool>());   // the flag changes the update
        Assert.Throws<ArgumentException>(() => new Sgd([], 0.1, 0, 0, nesterov: true));
    }

    [Fact]
    public void RestoredMomentumContinuesIdentically()
    {
        using var scope = NewDisposeScope();
        manual_seed(2);
        var a = nn.Linear(4, 2); var b = nn.Linear(4, 2);
        var xs = Enumerable.Range(0, 4).Select(_ => randn(3, 4)).ToList();
        b.load_state_dict(a.state_dict());
        var oa = new Sgd(a.named_parameters().Select(p => (p.name, (Tensor)p.parameter)), 0.05, 0.9, 1e-4);
        foreach (var x in xs) { oa.ZeroGrad(); a.forward(x).sum().backward(); oa.Step(); }

        var ob = new Sgd(b.named_parameters().Select(p => (p.name, (Tensor)p.parameter)), 0.05, 0.9, 1e-4);
        for (int i = 0; i < 2; i++) { ob.ZeroGrad(); b.forward(xs[i]).sum().backward(); ob.Step(); }
        var saved = ob.MomentumBuffers.ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        var weights = b.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        var c = nn.Linear(4, 2); c.load_state_dict(weights);
        var oc = new Sgd(c.named_parameters().Select(p => (p.name, (Tensor)p.parameter)), 0.05, 0.9, 1e-4);
        oc.LoadMomentum(saved);
        for (int i = 2; i < 4; i++) { oc.ZeroGrad(); c.forward(xs[i]).sum().backward(); oc.Step(); }
        Assert.True(a.weight!.equal(c.weight!).all().item<bool>());
    }

    /// <summary>The step decided on the device (runtime.loss_reads: log_interval): applied, it is <see cref="Sgd.Step()"/>
    /// bit for bit (momentum, weight decay, Nesterov); refused, nothing changes, not even with NaN gradients; a run whose
    /// first steps were refused starts its momentum as torch.optim.SGD does (buf = d) at its first applied step.</summary>
    [Theory]
    [InlineData(0.9, 1e-4, false)]
    [InlineData(0.9, 1e-4, true)]
    [InlineData(0.0, 1e-4, false)]
    [InlineData(0.9, 0.0, false)]
    public void Step_decided_on_the_device_is_the_step_when_applied_and_nothing_when_refused(double momentum, double wd, bool nesterov)
    {
        using var scope = NewDisposeScope();
        manual_seed(4);
        var a = nn.Linear(5, 3); var b = nn.Linear(5, 3);
        b.load_state_dict(a.state_dict());
        var reads = new Sgd(a.named_parameters().Select(p => (p.name, (Tensor)p.parameter)), 0.1, momentum, wd, nesterov);
        var onDevice = new Sgd(b.named_parameters().Select(p => (p.name, (Tensor)p.parameter)), 0.1, momentum, wd, nesterov);
        void Refused(bool poison)
        {
            onDevice.ZeroGrad();
            b.forward(randn(4, 5)).pow(2).sum().backward();
            if (poison) b.weight!.grad!.view(-1)[2] = float.NaN;
            var before = b.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
            var buffers = onDevice.MomentumBuffers.ToDictionary(kv => kv.Key, kv => kv.Value.clone());
            onDevice.Step(tensor(false));
            Assert.All(b.state_dict(), kv => Assert.True(kv.Value.equal(before[kv.Key]).all().item<bool>(), kv.Key));
            Assert.Equal(buffers.Keys, onDevice.MomentumBuffers.Keys);
            Assert.All(buffers, kv => Assert.True(kv.Value.equal(onDevice.MomentumBuffers[kv.Key]).all().item<bool>(), kv.Key));
        }
        Refused(poison: true);   // before any applied step: the momentum must not start
        Assert.Empty(onDevice.MomentumBuffers);
        for (int i = 0; i < 4; i++)
        {
            var x = randn(4, 5);
            reads.ZeroGrad(); a.forward(x).pow(2).sum().backward(); reads.Step();
            onDevice.ZeroGrad(); b.forward(x).pow(2).sum().backward(); onDevice.Step(tensor(true));
            if (i == 1) Refused(poison: false);
            if (i == 2) Refused(poison: true);
        }
        Assert.True(a.weight!.equal(b.weight!).all().item<bool>());
        Assert.True(a.bias!.equal(b.bias!).all().item<bool>());
        Assert.Equal(reads.MomentumBuffers.Keys, onDevice.MomentumBuffers.Keys);
        Assert.All(reads.MomentumBuffers, kv => Assert.True(kv.Value.equal(onDevice.MomentumBuffers[kv.Key]).all().item<bool>(), kv.Key));
        reads.Dispose(); onDevice.Dispose();
    }
}
