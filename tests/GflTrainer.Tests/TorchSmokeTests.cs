using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests;

/// <summary>Proves the native stack loads (libLibTorchSharp patched by the build) and autograd works.</summary>
public class TorchSmokeTests
{
    [Fact]
    public void Conv2dForwardAndBackwardOnCpu()
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(0);
        var conv = nn.Conv2d(3, 4, 3, padding: 1);
        var x = randn(2, 3, 8, 8, requires_grad: true);
        var y = conv.forward(x);
        Assert.Equal(new long[] { 2, 4, 8, 8 }, y.shape);
        y.pow(2).sum().backward();
        var g = x.grad!;
        Assert.Equal(x.shape, g.shape);
        Assert.True(g.abs().sum().item<float>() > 0);
        // d/dw of sum(y^2) for the bias is 2*sum(y) over N,H,W per channel.
        var expectedBiasGrad = (2 * y.detach()).sum(new long[] { 0, 2, 3 });
        Assert.True(allclose(conv.bias!.grad!, expectedBiasGrad, rtol: 1e-4, atol: 1e-4));
    }
}
