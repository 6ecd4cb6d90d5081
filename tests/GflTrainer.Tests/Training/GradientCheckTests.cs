using GflTrainer.Config;
using GflTrainer.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Training;

public class GradientCheckTests
{
    private static List<(string Name, Tensor Param)> Params(params (string Name, float[] Grad)[] spec)
    {
        var list = new List<(string, Tensor)>();
        foreach (var (name, grad) in spec)
        {
            var p = zeros(grad.Length).requires_grad_();
            p.grad = tensor(grad);
            list.Add((name, p));
        }
        return list;
    }

    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    [InlineData(float.NegativeInfinity)]
    public void AllFiniteValues_IsFalseForOneNonFiniteValue(float bad)
    {
        using var scope = NewDisposeScope();
        var ps = Params(("a", [1, 2]), ("b", [3, bad, 4]));
        Assert.False(GradientCheck.AllFiniteValues(ps.Select(p => p.Param.grad!).ToList()));
        Assert.False(GradientCheck.AllFiniteValues([cat(ps.Select(p => p.Param.grad!).ToList())]));   // one flat buffer
    }

    [Fact]
    public void AllFiniteValues_IsTrueForFiniteGradients_EvenWhenTheirSumOverflows()
    {
        using var scope = NewDisposeScope();
        // 3e38 + 3e38 is Inf in float: the fused sum says "maybe", the exact re-check says finite.
        var ps = Params(("a", [3e38f, 3e38f]), ("b", [-1, 1]));
        Assert.True(GradientCheck.AllFiniteValues(ps.Select(p => p.Param.grad!).ToList()));
        Assert.True(GradientCheck.AllFiniteValues([cat(ps.Select(p => p.Param.grad!).ToList())]));   // one flat buffer
        Assert.True(GradientCheck.AllFiniteValues([]));
    }

    [Fact]
    public void FindFirstNonFinite_NamesTheFirstInOrder_AndCountsItsValues()
    {
        using var scope = NewDisposeScope();
        var ps = Params(("a.weight", [1, 2]), ("b.weight", [float.NaN, 1, float.PositiveInfinity, float.NaN]),
            ("c.bias", [float.NaN]));
        var bad = GradientCheck.FindFirstNonFinite(ps)!;
        Assert.Equal(new NonFiniteGradient("b.weight", 3, 2, 4, 2), bad);
        Assert.Null(GradientCheck.FindFirstNonFinite(ps.Take(1)));
    }

    private static Tensor Finite(Tensor loss)
    {
        Assert.True(double.IsFinite(loss.item<float>()));
        return loss;
    }

    /// <summary>A real non-finite gradient under a finite loss: d/dw sqrt(w·0) = 0.5/sqrt(0)·0 = NaN while
    /// sqrt(0) = 0 (the kind of backward a GIoU or a norm at 0 can produce).</summary>
    /// The loss is computed by the returned function, after the optimizer has taken the parameters over.
    private static (nn.Module<Tensor, Tensor> Model, Func<Tensor> Loss) SqrtAtZero()
    {
        var model = nn.Sequential(("fc", nn.Linear(3, 2)), ("out", nn.Linear(2, 1)));
        var x = ones(4, 3);
        var named = model.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
        return (model, () => model.forward(x).sum() + (named["out.weight"] * 0).sqrt().sum());
    }

    [Fact]
    public void OptimizerStep_StopsOnANonFiniteGradient_NamingIt_WithoutUpdatingAnything()
    {
        using var scope = NewDisposeScope();
        manual_seed(3);
        var (model, loss) = SqrtAtZero();
        var named = model.named_parameters().Select(p => (p.name, (Tensor)p.parameter)).ToList();
        var before = named.Select(p => p.Item2.clone()).ToList();
        using var sgd = new Sgd(named, 0.1, 0.9, 1e-4);
        var outcome = new OptimizerStep(sgd, null, new GradClipConfig { MaxNorm = 35 }).Run(Finite(loss()));
        Assert.False(outcome.Applied);
        Assert.Equal(new NonFiniteGradient("out.weight", 2, 2, 2, 1), outcome.NonFinite);
        for (int i = 0; i < named.Count; i++)
            Assert.True(named[i].Item2.equal(before[i]).all().item<bool>(), $"{named[i].Item1} changed");
        Assert.Empty(sgd.MomentumBuffers);
        var e = new NonFiniteGradientException(12, 2, outcome.NonFinite!, "ck/nan_iter_12");
        Assert.Equal("non-finite gradient at iteration 12 (epoch 2): out.weight has 2 non-finite of 2 values (2 NaN, 0 Inf); " +
            "the optimizer step was not applied; weights before this step saved to ck/nan_iter_12. Try a lower " +
            "train.optimizer.lr, a longer train.schedule.warmup_iters or train.grad_clip.max_norm (e.g. 35)", e.Message);
        Assert.IsAssignableFrom<GflRuntimeException>(e);   // exit code 1, one line, as a non-finite loss
    }

    [Fact]
    public void OptimizerStep_Fp16_TreatsNonFiniteGradientsAsOverflow_SkipsAndBacksOff()
    {
        using var scope = NewDisposeScope();
        manual_seed(3);
        var (model, loss) = SqrtAtZero();
        var named = model.named_parameters().Select(p => (p.name, (Tensor)p.parameter)).ToList();
        var before = named.Select(p => p.Item2.clone()).ToList();
        using var sgd = new Sgd(named, 0.1, 0.9, 1e-4);
        var scaler = new LossScaler(initScale: 1024);
        var outcome = new OptimizerStep(sgd, scaler, null).Run(Finite(loss()));
        Assert.Equal(new OptimizerStepOutcome(false, null), outcome);
        Assert.Equal(512, scaler.Scale);
        for (int i = 0; i < named.Count; i++) Assert.True(named[i].Item2.equal(before[i]).all().item<bool>());
    }

    [Fact]
    public void OptimizerStep_FiniteGradients_UpdateExactlyAsSgdAndClipDo()
    {
        using var scope = NewDisposeScope();
        manual_seed(4);
        var a = nn.Linear(5, 3); var b = nn.Linear(5, 3);
        b.load_state_dict(a.state_dict());
        var x = randn(4, 5);
        using var sa = new Sgd(a.named_parameters().Select(p => (p.name, (Tensor)p.parameter)), 0.1, 0.9, 1e-4);
        using var sb = new Sgd(b.named_parameters().Select(p => (p.name, (Tensor)p.parameter)), 0.1, 0.9, 1e-4);
        var outcome = new OptimizerStep(sa, null, new GradClipConfig { MaxNorm = 0.5 }).Run(a.forward(x).pow(2).sum());
        Assert.Equal(new OptimizerStepOutcome(true, null), outcome);
        sb.ZeroGrad(); b.forward(x).pow(2).sum().backward();
        nn.utils.clip_grad_norm_(b.parameters(), 0.5, 2); sb.Step();
        Assert.True(a.weight!.equal(b.weight!).all().item<bool>());
        Assert.True(a.bias!.equal(b.bias!).all().item<bool>());
    }
}
