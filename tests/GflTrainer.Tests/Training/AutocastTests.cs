using GflTrainer.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Training;

public class AutocastTests
{
    [Fact]
    public void Bf16OnCpu_ConvRunsInBf16_GradsStayFp32_AndStateRestores()
    {
        using var scope = NewDisposeScope();
        var conv = nn.Conv2d(3, 4, 3);
        var x = randn(1, 3, 8, 8);
        Tensor y;
        using (Autocast.Enter(ScalarType.BFloat16, CPU))
        {
            Assert.True(Autocast.IsEnabled(CPU));
            y = conv.forward(x);
            Assert.Equal(ScalarType.BFloat16, y.dtype);
        }
        Assert.False(Autocast.IsEnabled(CPU));
        y.to(ScalarType.Float32).sum().backward();
        Assert.Equal(ScalarType.Float32, conv.weight!.grad!.dtype);
        Assert.Equal(ScalarType.Float32, conv.forward(x).dtype);
    }

    [Fact]
    public void Off_ReturnsNoRegion() => Assert.Null(Autocast.Enter(null, CPU));

    [Fact]
    public void AutocastStateIsThreadLocal()
    {
        using var region = Autocast.Enter(ScalarType.BFloat16, CPU);
        bool other = true;
        var t = new Thread(() => other = Autocast.IsEnabled(CPU));
        t.Start(); t.Join();
        Assert.False(other);
        Assert.True(Autocast.IsEnabled(CPU));
    }

    [Fact]
    public void LossScaler_SkipsOnOverflowAndBacksOff()
    {
        using var scope = NewDisposeScope();
        var p = nn.Parameter(ones(3));
        var scaler = new LossScaler(initScale: 1024, growthInterval: 2);
        // What OptimizerStep does with it: unscale, check, update; false skips the step.
        bool UnscaleAndUpdate(Tensor[] grads)
        {
            scaler.Unscale(grads);
            bool finite = GradientCheck.AllFiniteValues(grads);
            scaler.Update(finite);
            return finite;
        }
        scaler.ScaleLoss((p * 2).sum()).backward();
        Assert.True(UnscaleAndUpdate(new[] { p.grad! }));
        Assert.True(allclose(p.grad!, full(3, 2.0f)));
        p.grad!.fill_(float.PositiveInfinity);
        Assert.False(UnscaleAndUpdate(new[] { p.grad! }));
        Assert.Equal(512, scaler.Scale);
        p.grad!.fill_(1); Assert.True(UnscaleAndUpdate(new[] { p.grad! }));
        p.grad!.fill_(1); Assert.True(UnscaleAndUpdate(new[] { p.grad! }));
        Assert.Equal(1024, scaler.Scale);
    }
}
