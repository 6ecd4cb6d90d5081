using GflTrainer.Model;
using GflTrainer.Runtime;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Runtime;

/// <summary>The channels_last layout gfl builds without a memory_format argument: PyTorch's strides, the same values,
/// and a model converted in place (frozen weights included) that keeps its Parameter objects.</summary>
public sealed class ChannelsLastTests
{
    [Fact]
    public void Of_gives_PyTorchs_channels_last_strides_and_the_same_values()
    {
        using var scope = NewDisposeScope();
        var x = randn(2, 3, 5, 7);
        var y = ChannelsLast.Of(x);
        // torch 1.13: torch.randn(2,3,5,7).contiguous(memory_format=torch.channels_last).stride() == (105, 1, 21, 3)
        Assert.Equal(new long[] { 105, 1, 21, 3 }, y.stride());
        Assert.True(ChannelsLast.Is(y));
        Assert.False(ChannelsLast.Is(x));
        Assert.True(y.equal(x).all().item<bool>());
        // A 1x1 conv weight: torch.empty(4,6,1,1, memory_format=torch.channels_last).stride() == (6, 1, 6, 6) (torch 1.13),
        // distinct from the contiguous (6, 1, 1, 1), which .contiguous(memory_format) would keep.
        var w = randn(4, 6, 1, 1);
        Assert.Equal(new long[] { 6, 1, 6, 6 }, ChannelsLast.Of(w).stride());
        Assert.False(ChannelsLast.Is(w));
        Assert.Throws<ArgumentException>(() => ChannelsLast.Of(randn(3, 4)));
        Assert.False(ChannelsLast.Is(randn(3, 4)));
    }

    [Fact]
    public void View_reads_a_flat_NHWC_buffer_under_the_NCHW_shape()
    {
        using var scope = NewDisposeScope();
        var x = randn(2, 3, 4, 5);
        var flat = x.permute(0, 2, 3, 1).contiguous().reshape(-1);
        var v = ChannelsLast.View(flat, x.shape);
        Assert.True(ChannelsLast.Is(v));
        Assert.True(v.equal(x).all().item<bool>());
    }

    [Fact]
    public void Apply_converts_every_conv_weight_in_place_frozen_ones_included()
    {
        using var scope = NewDisposeScope();
        manual_seed(2);
        using var detector = GflDetector.Create(depth: 18, numClasses: 3, frozenStages: 1, fpnChannels: 16, stackedConvs: 1,
            groupNormGroups: 4, backboneBaseChannels: 8);
        var before = detector.named_parameters().ToDictionary(p => p.name, p => (Param: p.parameter, Value: p.parameter.detach().clone(), p.parameter.requires_grad));
        Assert.Contains(before.Values, p => p.Param.dim() == 4 && !p.requires_grad);   // the frozen stem and layer1
        ChannelsLast.Apply(detector);
        foreach (var (name, p) in detector.named_parameters())
        {
            Assert.Same(before[name].Param, p);
            Assert.Equal(before[name].requires_grad, p.requires_grad);
            Assert.True(p.equal(before[name].Value).all().item<bool>(), name);
            Assert.Equal(p.dim() == 4, ChannelsLast.Is(p));
        }
        // Inference feeds NCHW batches: the convolutions pick NHWC from the weights (libtorch's
        // mkldnn_conv_use_channels_last / cuDNN's suggest_memory_format: input or weight), so the head outputs are NHWC.
        detector.eval();
        using (no_grad())
        {
            var outputs = detector.forward(randn(1, 3, 64, 96));
            Assert.All(outputs.ClassScores.Concat(outputs.BoxPredictions), t => Assert.True(ChannelsLast.Is(t), string.Join(",", t.stride())));
        }
    }
}
