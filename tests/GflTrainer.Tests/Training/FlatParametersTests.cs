using GflTrainer.Checkpoints;
using GflTrainer.Runtime;
using GflTrainer.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Training;

/// <summary>The optimizer's flat parameter and gradient buffers: the model computes, saves and loads as before, and
/// autograd writes into the buffer.</summary>
public sealed class FlatParametersTests
{
    // TorchSharp's GroupNorm leaves its affine parameters uninitialised (gfl's ConvModule initialises them itself).
    static nn.Module<Tensor, Tensor> Net()
    {
        var norm = nn.GroupNorm(2, 4);
        nn.init.ones_(norm.weight);
        nn.init.zeros_(norm.bias!);
        return nn.Sequential(("a", nn.Conv2d(3, 4, 3)), ("n", norm), ("b", nn.Conv2d(4, 2, 1)));
    }

    static List<(string, Tensor)> Named(nn.Module m) => m.named_parameters().Select(p => (p.name, (Tensor)p.parameter)).ToList();

    [Fact]
    public void Parameters_become_views_of_one_buffer_and_the_model_computes_the_same()
    {
        using var scope = NewDisposeScope();
        manual_seed(5);
        var net = Net();
        var x = randn(2, 3, 8, 8);
        var before = net.forward(x).detach().clone();
        var weights = Named(net).Select(p => p.Item2.detach().clone()).ToList();
        using var sgd = new Sgd(Named(net), 0.1, 0.9, 1e-4);

        Assert.True(net.forward(x).equal(before).all().item<bool>());
        Assert.True(sgd.Gradients.numel() >= weights.Sum(w => w.numel()));   // slices start 64-byte aligned
        var flat = cat(Named(net).Select(p => p.Item2.detach().reshape(-1)).ToList());
        Assert.True(flat.equal(cat(weights.Select(w => w.reshape(-1)).ToList())).all().item<bool>());
        net.forward(x).sum().backward();
        // Backward accumulated into the buffer's slices: each .grad is still a view of it.
        var grads = cat(Named(net).Select(p => p.Item2.grad!.reshape(-1)).ToList());
        SameSum(grads, sgd.Gradients);
        Assert.All(Named(net), p => Assert.Equal(0, p.Item2.storage_offset() % 16));
        Assert.True(sgd.Gradients.abs().sum().item<float>() > 0);
    }

    // The buffer holds the gradients and zeros between the aligned slices: the same sum up to summation order.
    static void SameSum(Tensor grads, Tensor buffer)
    {
        double a = grads.abs().sum().item<float>(), b = buffer.abs().sum().item<float>();
        Assert.True(a > 0 && Math.Abs(a - b) <= 1e-5 * a, $"{a} vs {b}");
    }

    /// <summary>The alignment gaps between slices are part of every flat computation (the update, the finite check):
    /// they must hold zeros, whatever the allocator hands out. The heap is poisoned with a NaN block of the buffer's
    /// size, freed just before, which a buffer that is not cleared would reuse.</summary>
    [Fact]
    public void The_gaps_between_slices_are_zero_on_a_poisoned_heap()
    {
        using var scope = NewDisposeScope();
        var net = Net();
        var parameters = Named(net).Select(p => p.Item2).ToList();
        long total = parameters.Sum(p => (p.numel() + 15) / 16 * 16);
        // Several blocks, so that whichever the allocator picks (its caches hold the freed ones) is NaN-filled.
        foreach (var block in Enumerable.Range(0, 16).Select(_ => full(total, float.NaN)).ToList()) block.Dispose();
        using var flat = new FlatParameters(parameters);
        Assert.Equal(total, flat.Values.numel());
        Assert.True(flat.Values.isfinite().all().item<bool>(), "garbage between the parameters");
        Assert.True(flat.Gradients.isfinite().all().item<bool>());
        var inSlices = parameters.Sum(p => p.detach().abs().sum().item<float>());
        Assert.Equal(inSlices, flat.Values.abs().sum().item<float>(), 3);
    }

    [Fact]
    public void The_parameters_share_the_buffer()
    {
        using var scope = NewDisposeScope();
        var net = Net();
        using var flat = new FlatParameters(Named(net).Select(p => p.Item2).ToList());
        using (no_grad()) flat.Values.fill_(3);
        Assert.All(Named(net), p => Assert.True((p.Item2 == 3).all().item<bool>(), p.Item1));
        using (no_grad()) Named(net)[2].Item2.fill_(-1);
        Assert.Equal(-4, flat.Slice(flat.Values, 2).sum().item<float>());
    }

    [Fact]
    public void A_model_with_flat_parameters_saves_and_loads_every_tensor_at_its_own_offset()
    {
        using var scope = NewDisposeScope();
        manual_seed(6);
        var net = Net();
        using var sgd = new Sgd(Named(net), 0.1, 0.9, 1e-4);
        sgd.ZeroGrad(); net.forward(randn(1, 3, 8, 8)).pow(2).sum().backward(); sgd.Step();
        var dir = Directory.CreateTempSubdirectory("gfl-flat-");
        try
        {
            var path = Path.Combine(dir.FullName, "m.safetensors");
            Safetensors.Write(path, net.state_dict());
            var momentum = Path.Combine(dir.FullName, "o.safetensors");
            Safetensors.Write(momentum, sgd.MomentumBuffers);
            using var read = Safetensors.Read(path);
            foreach (var (name, t) in net.state_dict())
                Assert.True(read.Tensors[name].equal(t).all().item<bool>(), name);
            using var readMomentum = Safetensors.Read(momentum);
            Assert.Equal(Named(net).Count, readMomentum.Tensors.Count);
            foreach (var (name, t) in sgd.MomentumBuffers)
                Assert.True(readMomentum.Tensors[name].equal(t).all().item<bool>(), "momentum " + name);

            // Loading into a flattened model copies in place: the views stay, the next step continues from the file.
            var other = Net();
            using var otherSgd = new Sgd(Named(other), 0.1, 0.9, 1e-4);
            using (no_grad())
                foreach (var (name, p) in Named(other)) p.copy_(read.Tensors[name]);
            otherSgd.LoadMomentum(readMomentum.Tensors);
            var x = randn(1, 3, 8, 8);
            sgd.ZeroGrad(); net.forward(x).pow(2).sum().backward(); sgd.Step();
            otherSgd.ZeroGrad(); other.forward(x).pow(2).sum().backward(); otherSgd.Step();
            foreach (var ((name, a), (_, b)) in Named(net).Zip(Named(other)))
                Assert.True(a.equal(b).all().item<bool>(), name + " " + (a - b).abs().max().item<float>());
        }
        finally { dir.Delete(true); }
    }

    [Fact]
    public void A_replaced_gradient_gets_its_view_back_at_the_next_zero_grad()
    {
        using var scope = NewDisposeScope();
        var net = Net();
        var named = Named(net);
        using var sgd = new Sgd(named, 0.1, 0, 0);
        named[1].Item2.grad = ones_like(named[1].Item2);   // e.g. a user hook replacing the tensor
        named[2].Item2.grad = null;
        sgd.ZeroGrad();
        net.forward(randn(1, 3, 8, 8)).sum().backward();
        var grads = cat(named.Select(p => p.Item2.grad!.reshape(-1)).ToList());
        SameSum(grads, sgd.Gradients);
    }

    [Fact]
    public void Momentum_restores_all_or_nothing_and_mixed_parameter_types_are_refused()
    {
        using var scope = NewDisposeScope();
        var net = Net();
        using var sgd = new Sgd(Named(net), 0.1, 0.9, 0);
        sgd.LoadMomentum(new Dictionary<string, Tensor>());   // a checkpoint from before the first step
        Assert.Empty(sgd.MomentumBuffers);
        var partial = Named(net).Take(2).ToDictionary(p => p.Item1, p => zeros_like(p.Item2));
        var e = Assert.Throws<CheckpointException>(() => sgd.LoadMomentum(partial, "ck/epoch_1"));
        Assert.Contains("no momentum buffer for parameter 'n.weight'", e.Message);

        Assert.Throws<ArgumentException>(() => new Sgd([("a", zeros(2).requires_grad_()), ("b", zeros(2, dtype: float64).requires_grad_())], 0.1, 0, 0));
    }

    /// <summary>runtime.channels_last (ChannelsLast.Apply before the optimizer): the conv weights and their gradients stay
    /// channels_last as NHWC views of the buffers (the layout
    /// the NHWC kernels read and write, so no conversion per call), the other parameters stay contiguous, the values are
    /// the same, backward writes into the views and zeroing keeps them.</summary>
    [Fact]
    public void Channels_last_weights_and_gradients_are_NHWC_views_of_the_buffers()
    {
        using var scope = NewDisposeScope();
        manual_seed(8);
        var net = Net();
        var weights = Named(net).ToDictionary(p => p.Item1, p => p.Item2.detach().clone());
        ChannelsLast.Apply(net);
        using var sgd = new Sgd(Named(net), 0.1, 0.9, 1e-4);
        foreach (var (name, p) in Named(net))
        {
            Assert.True(p.equal(weights[name]).all().item<bool>(), name);
            Assert.Equal(p.dim() == 4, ChannelsLast.Is(p));
            Assert.Equal(p.dim() == 4, ChannelsLast.Is(p.grad!));
            if (p.dim() != 4) Assert.True(p.is_contiguous(), name);
        }
        for (int step = 0; step < 2; step++)
        {
            sgd.ZeroGrad();
            net.forward(ChannelsLast.Of(randn(2, 3, 8, 8))).sum().backward();
            var grads = cat(Named(net).Select(p => p.Item2.grad!.reshape(-1)).ToList());
            SameSum(grads, sgd.Gradients);   // backward wrote into the views
            Assert.All(Named(net), p => Assert.Equal(p.Item2.dim() == 4, ChannelsLast.Is(p.Item2.grad!)));
            sgd.Step();
        }
        Assert.All(Named(net), p => Assert.Equal(p.Item2.dim() == 4, ChannelsLast.Is(p.Item2)));
        // A conv weight's gradient replaced by another (contiguous) tensor gets its NHWC view back.
        var conv = Named(net)[0].Item2;
        conv.grad = zeros_like(conv).contiguous();
        sgd.ZeroGrad();
        Assert.True(ChannelsLast.Is(conv.grad!));
    }

    /// <summary>The update is element-wise, so the layout of the buffers changes nothing: from the same weights and
    /// the same gradients, channels_last and NCHW optimizers give bit-identical weights and momentum; a checkpoint of
    /// one loads into the other.</summary>
    [Fact]
    public void Channels_last_update_is_bit_identical_and_checkpoints_are_interchangeable()
    {
        using var scope = NewDisposeScope();
        manual_seed(9);
        var a = Net();
        var b = Net();
        b.load_state_dict(a.state_dict());
        using var nchw = new Sgd(Named(a), 0.1, 0.9, 1e-4, nesterov: true);
        ChannelsLast.Apply(b);
        using var nhwc = new Sgd(Named(b), 0.1, 0.9, 1e-4, nesterov: true);
        for (int step = 0; step < 3; step++)
        {
            var grads = Named(a).Select(p => randn(p.Item2.shape)).ToList();
            using (no_grad())
                foreach (var (p, g) in Named(a).Zip(grads).Concat(Named(b).Zip(grads))) p.Item2.grad!.copy_(g);
            nchw.Step();
            nhwc.Step();
        }
        foreach (var ((name, pa), (_, pb)) in Named(a).Zip(Named(b)))
        {
            Assert.True(pa.equal(pb).all().item<bool>(), name);
            Assert.True(nchw.MomentumBuffers[name].equal(nhwc.MomentumBuffers[name]).all().item<bool>(), "momentum " + name);
        }
        var dir = Directory.CreateTempSubdirectory("gfl-flat-cl-");
        try
        {
            var momentum = Path.Combine(dir.FullName, "o.safetensors");
            Safetensors.Write(momentum, nhwc.MomentumBuffers);   // NHWC views, written in NCHW order
            using var read = Safetensors.Read(momentum);
            var c = Net();
            using var again = new Sgd(Named(c), 0.1, 0.9, 1e-4, nesterov: true);
            again.LoadMomentum(read.Tensors);
            foreach (var (name, t) in nchw.MomentumBuffers)
                Assert.True(again.MomentumBuffers[name].equal(t).all().item<bool>(), name);
        }
        finally { dir.Delete(true); }
    }
}
