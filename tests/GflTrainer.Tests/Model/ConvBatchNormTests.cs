using GflTrainer.Model;
using GflTrainer.Tests.Support;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Model;

/// <summary>The eval-mode fold of BN into the conv must be the same function as conv -> BN, with the same gradients
/// for the input, the conv weight and BN's gamma/beta (checked in float64, so only the fold's algebra is tested).</summary>
public class ConvBatchNormTests
{
    private static (Conv2d Conv, BatchNorm2d Bn) Pair(bool convBias, long stride)
    {
        manual_seed(3);
        var conv = nn.Conv2d(4, 6, 3, stride: stride, padding: 1, bias: convBias);
        var bn = nn.BatchNorm2d(6, eps: 1e-5);
        using (no_grad())
        {
            bn.weight!.uniform_(0.5, 1.5);
            bn.bias!.uniform_(-0.5, 0.5);
            bn.running_mean!.uniform_(-1, 1);
            bn.running_var!.uniform_(0.2, 2);
        }
        conv.to(ScalarType.Float64);
        bn.to(ScalarType.Float64);
        return (conv, bn);
    }

    private static Tensor[] Gradients(Conv2d conv, BatchNorm2d bn, Tensor x, Tensor y, Tensor upstream)
    {
        var wrt = new List<Tensor> { x, conv.weight!, bn.weight!, bn.bias! };
        if (conv.bias is not null) wrt.Add(conv.bias);
        return torch.autograd.grad(new[] { (y * upstream).sum() }, wrt).ToArray();
    }

    [Theory]
    [InlineData(false, 1)]
    [InlineData(false, 2)]
    [InlineData(true, 1)]
    public void EvalMode_FoldedForwardAndGradients_EqualConvThenBatchNorm(bool convBias, long stride)
    {
        using var scope = NewDisposeScope();
        var (conv, bn) = Pair(convBias, stride);
        bn.eval();
        var x = randn(2, 4, 9, 7, dtype: ScalarType.Float64).requires_grad_();
        var reference = bn.forward(conv.forward(x));
        var upstream = randn_like(reference);
        var expectedGrads = Gradients(conv, bn, x, reference, upstream);

        var folded = ConvBatchNorm.Forward(conv, bn, x);
        TensorAssert.Close(reference, folded, 1e-12, 1e-12, "folded output");
        var grads = Gradients(conv, bn, x, folded, upstream);
        string[] names = { "input", "conv weight", "bn weight", "bn bias", "conv bias" };
        for (int i = 0; i < grads.Length; i++)
            TensorAssert.Close(expectedGrads[i], grads[i], 1e-11, 1e-11, $"grad {names[i]}");
    }

    [Fact]
    public void EvalMode_Fold_NeverTouchesRunningStatistics()
    {
        using var scope = NewDisposeScope();
        var (conv, bn) = Pair(false, 1);
        bn.eval();
        var mean = bn.running_mean!.clone();
        var variance = bn.running_var!.clone();
        ConvBatchNorm.Forward(conv, bn, randn(2, 4, 5, 5, dtype: ScalarType.Float64));
        TensorAssert.Equal(mean, bn.running_mean!, "running mean");
        TensorAssert.Equal(variance, bn.running_var!, "running var");
    }

    [Fact]
    public void TrainMode_UsesBatchStatisticsAndUpdatesRunningStatistics()
    {
        using var scope = NewDisposeScope();
        var (conv, bn) = Pair(false, 1);
        bn.train();
        var x = randn(2, 4, 5, 5, dtype: ScalarType.Float64);
        var mean = bn.running_mean!.clone();
        var y = ConvBatchNorm.Forward(conv, bn, x);
        // Batch statistics: every channel of the output has mean beta over (N, H, W).
        TensorAssert.Close(bn.bias!.detach(), y.mean(new long[] { 0, 2, 3 }), 1e-12, 1e-12, "per-channel mean");
        Assert.False(mean.allclose(bn.running_mean!), "running mean moved");
    }

    [Fact]
    public void DownsampleBranch_RequiresConvThenBatchNorm()
    {
        using var branch = nn.Sequential(("0", nn.BatchNorm2d(4)), ("1", nn.Conv2d(4, 4, 1)));
        using var x = randn(1, 4, 3, 3);
        Assert.Throws<InvalidOperationException>(() => ConvBatchNorm.Forward(branch, x));
    }
}
