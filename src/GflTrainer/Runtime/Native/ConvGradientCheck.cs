using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GflTrainer.Runtime.Native;

/// <summary>A 2-D convolution's shape, as the check needs it.</summary>
public readonly record struct ConvShape(long InChannels, long OutChannels, long Kernel, long Stride, long Padding)
{
    public override string ToString() =>
        $"conv {InChannels}->{OutChannels} k{Kernel}" + (Stride != 1 ? $" s{Stride}" : "") + (Padding != Kernel / 2 ? $" p{Padding}" : "");

    /// <summary>The distinct convolution shapes of a model (square kernels, groups 1, as in every gfl model).</summary>
    public static IReadOnlyList<ConvShape> Of(nn.Module model) =>
        model.modules().OfType<Conv2d>()
            .Select(c => new ConvShape(c.weight!.shape[1], c.weight.shape[0], c.weight.shape[2], c.stride[0], c.padding[0]))
            .Distinct().ToList();
}

/// <summary>One case whose float32 CPU input gradient differs from float64.</summary>
public sealed record ConvGradientFailure(ConvShape Shape, long Batch, long Size, int Threads, double RelativeError, long NonFinite)
{
    public override string ToString() =>
        $"{Shape}, batch {Batch}, {Size}x{Size}, {Threads} thread(s): " +
        (NonFinite > 0 ? $"{NonFinite} non-finite grad_input values" : $"grad_input relative error {RelativeError:G3}");
}

/// <summary>
/// Checks libtorch's float32 CPU convolution backward (oneDNN on x86) against float64 (which oneDNN does not
/// handle: libtorch's own kernels) for given shapes, map sizes, batch sizes and thread counts, with the heap
/// poisoned before each backward: NaN-filled blocks of the sizes that oneDNN's padded weight and gradient buffers
/// take are allocated and freed, so memory a kernel reads without writing holds NaN, whatever the machine.
/// Catches the padding-lane bug of <see cref="OneDnnCacheWorkaround"/> and any other uninitialised read or wrong
/// kernel in this path. Relative error = max |g32 - g64| / max |g64|; float32 accumulation stays below 1e-5 here.
/// With <c>channelsLast</c> the float32 input, weight and output gradient are channels_last, as in a
/// <c>runtime.channels_last</c> run: oneDNN's NHWC kernels and their reorders are checked instead.
/// </summary>
public static class ConvGradientCheck
{
    public const double Tolerance = 1e-3;

    public static IReadOnlyList<ConvGradientFailure> Run(
        IEnumerable<ConvShape> shapes, IReadOnlyList<long> sizes, IReadOnlyList<long> batches, IReadOnlyList<int> threads, long seed = 0,
        bool channelsLast = false)
    {
        var failures = new List<ConvGradientFailure>();
        int previousThreads = torch.get_num_threads();
        using var gen = new Generator((ulong)seed);
        try
        {
            foreach (var t in threads)
            {
                torch.set_num_threads(t);
                foreach (var shape in shapes)
                foreach (var n in batches)
                foreach (var size in sizes)
                {
                    if (size + 2 * shape.Padding < shape.Kernel) continue;
                    if (Check(shape, n, size, t, gen, channelsLast) is { } f) failures.Add(f);
                }
            }
        }
        finally { torch.set_num_threads(previousThreads); }
        return failures;
    }

    private static ConvGradientFailure? Check(ConvShape s, long n, long size, int threads, Generator gen, bool channelsLast)
    {
        using var scope = NewDisposeScope();
        var x = randn(new[] { n, s.InChannels, size, size }, generator: gen).relu_();
        var w = randn(new[] { s.OutChannels, s.InChannels, s.Kernel, s.Kernel }, generator: gen)
            .mul_(1.0 / Math.Sqrt(s.InChannels * s.Kernel * s.Kernel));
        var b = randn(new[] { s.OutChannels }, generator: gen);
        long outSize = (size + 2 * s.Padding - s.Kernel) / s.Stride + 1;
        // The losses hand the head a permuted (channels-last) gradient; the check does the same.
        var g = randn(new[] { n, outSize, outSize, s.OutChannels }, generator: gen).permute(0, 3, 1, 2);

        var grad32 = channelsLast
            ? InputGradient(ChannelsLast.Of(x), ChannelsLast.Of(w), b, ChannelsLast.Of(g), s, poison: true)
            : InputGradient(x, w, b, g, s, poison: true);
        var grad64 = InputGradient(x.to(float64), w.to(float64), b.to(float64), g.to(float64), s, poison: false);
        long nonFinite = (~grad32.isfinite()).sum().item<long>();
        double scale = grad64.abs().max().item<double>();
        double err = nonFinite > 0 ? double.PositiveInfinity
            : (grad32.to(float64) - grad64).abs().max().item<double>() / Math.Max(scale, 1e-30);
        return err > Tolerance ? new ConvGradientFailure(s, n, size, threads, err, nonFinite) : null;
    }

    private static Tensor InputGradient(Tensor x, Tensor w, Tensor b, Tensor g, ConvShape s, bool poison)
    {
        var xi = x.detach().requires_grad_();
        var wi = w.detach().requires_grad_();
        var bi = b.detach().requires_grad_();
        var y = nn.functional.conv2d(xi, wi, bi, strides: new[] { s.Stride, s.Stride }, padding: new[] { s.Padding, s.Padding });
        if (poison) PoisonHeap(s, x.shape[0], g.shape[2]);
        return torch.autograd.grad(new[] { y }, new[] { xi, wi, bi }, new[] { g })[0];
    }

    /// <summary>Allocates and frees NaN-filled blocks of the sizes oneDNN's blocked buffers take for this shape
    /// (output channels rounded up to 16, AVX-512's block, which also covers AVX2's 8), so that malloc hands the
    /// NaN-filled memory back to the backward's reorders and scratch buffers.</summary>
    internal static void PoisonHeap(ConvShape s, long n, long outSize)
    {
        long paddedOut = (s.OutChannels + 15) / 16 * 16, paddedIn = (s.InChannels + 15) / 16 * 16;
        foreach (var elements in new[] { paddedOut * paddedIn * s.Kernel * s.Kernel, n * paddedOut * outSize * outSize })
            full(new[] { elements }, float.NaN).Dispose();
    }
}
