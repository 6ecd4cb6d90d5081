using GflTrainer.Model;
using TorchSharp;
using Xunit;
using GflTrainer.Runtime;
using GflTrainer.Runtime.Native;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Runtime.Native;

/// <summary>
/// CPU backward through the convolutions gfl trains, against float64 (which libtorch computes without oneDNN), with
/// NaN-filled memory handed to oneDNN's buffers, at 1 and 2 threads. On a machine where oneDNN reads uninitialised
/// padding lanes these fail by relative error, not only by NaN. .ci/run also runs them with every malloc
/// NaN-filled (glibc.malloc.perturb) while simulating the Zen 5 VM whose hidden caches caused exactly that.
/// </summary>
public class ConvGradientTests
{
    [Theory]
    [InlineData(1, false)]
    [InlineData(2, false)]
    [InlineData(1, true)]   // runtime.channels_last: oneDNN's NHWC kernels and reorders
    [InlineData(2, true)]
    public void HeadConvs_InputGradientMatchesFloat64(int threads, bool channelsLast)
    {
        var shapes = new List<ConvShape>();
        foreach (long classes in new long[] { 1, 3, 80 }) shapes.Add(new ConvShape(64, classes, 3, 1, 1));   // gfl_cls
        foreach (long regMax in new long[] { 7, 16 }) shapes.Add(new ConvShape(64, 4 * (regMax + 1), 3, 1, 1));   // gfl_reg
        shapes.Add(new ConvShape(96, 20, 3, 1, 1));   // feat_channels not a power of two
        var failures = ConvGradientCheck.Run(shapes, sizes: [2, 4, 8, 16], batches: [1, 2, 4, 8], threads: [threads], channelsLast: channelsLast);
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    /// <summary>A whole small GflDetector (R18 width 16, FPN 64, 3 classes, reg_max 16): every parameter's gradient
    /// and the image gradient equal the float64 model's within 1e-3 relative.</summary>
    [Theory]
    [InlineData(1, 2, 64, false)]
    [InlineData(2, 2, 64, false)]
    [InlineData(2, 3, 96, false)]
    [InlineData(2, 2, 64, true)]   // runtime.channels_last: NHWC image and conv weights in the float32 model
    [InlineData(1, 3, 96, true)]
    public void SmallDetector_GradientsMatchFloat64(int threads, long batch, long size, bool channelsLast)
    {
        int previous = torch.get_num_threads();
        torch.set_num_threads(threads);
        try
        {
            using var scope = NewDisposeScope();
            using var m32 = Create();
            using var m64 = Create();
            m64.to(ScalarType.Float64);
            using var gen = new Generator(7);
            var x = randn(new[] { batch, 3L, size, size }, generator: gen);
            if (channelsLast)
            {
                ChannelsLast.Apply(m32);
                Assert.All(m32.parameters().Where(p => p.dim() == 4), p => Assert.True(ChannelsLast.Is(p)));
            }
            var (g32, gx32) = Gradients(m32, channelsLast ? ChannelsLast.Of(x) : x, poison: true);
            var (g64, gx64) = Gradients(m64, x.to(ScalarType.Float64), poison: false);
            var errors = g32.Keys.Select(k => (name: k, err: RelativeError(g32[k], g64[k]))).Append((name: "image", err: RelativeError(gx32, gx64)))
                .Where(e => !(e.err <= 1e-3)).ToList();
            Assert.True(errors.Count == 0, string.Join("\n", errors.Select(e => $"{e.name}: {e.err:G3}")));
        }
        finally { torch.set_num_threads(previous); }
    }

    private static GflDetector Create()
    {
        torch.manual_seed(3);
        var d = GflDetector.Create(depth: 18, numClasses: 3, regMax: 16, frozenStages: -1, normEval: true,
            fpnChannels: 64, stackedConvs: 2, groupNormGroups: 32, backboneBaseChannels: 16);
        d.train();
        return d;
    }

    private static (Dictionary<string, Tensor>, Tensor) Gradients(GflDetector model, Tensor images, bool poison)
    {
        using var gen = new Generator(11);   // the same loss weights for both precisions
        var x = images.detach().requires_grad_();
        var outputs = model.forward(x);
        var loss = zeros(1, dtype: images.dtype);
        foreach (var t in outputs.ClassScores.Concat(outputs.BoxPredictions))
            loss = loss + (t * randn(t.shape, generator: gen).to(t.dtype)).sum();
        if (poison)
            foreach (var t in outputs.ClassScores.Concat(outputs.BoxPredictions))
                ConvGradientCheck.PoisonHeap(new ConvShape(64, t.shape[1], 3, 1, 1), t.shape[0], t.shape[2]);
        loss.backward();
        return (model.named_parameters().Where(p => p.parameter.grad is not null)
            .ToDictionary(p => p.name, p => p.parameter.grad!.to(ScalarType.Float64)), x.grad!.to(ScalarType.Float64));
    }

    private static double RelativeError(Tensor a, Tensor b)
    {
        if (!a.isfinite().all().item<bool>()) return double.PositiveInfinity;
        double scale = b.abs().max().item<double>();
        return (a - b).abs().max().item<double>() / Math.Max(scale, 1e-30);
    }
}
