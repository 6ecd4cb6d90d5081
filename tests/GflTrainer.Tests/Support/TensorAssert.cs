using Xunit.Sdk;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Support;

/// <summary>Comparisons at the fixture README's tolerances, with the worst element in the failure message.</summary>
internal static class TensorAssert
{
    /// <summary>|actual − expected| ≤ abs + rel·|expected| element-wise, same shape.</summary>
    public static void Close(Tensor expected, Tensor actual, double abs, double rel, string what)
    {
        if (!expected.shape.SequenceEqual(actual.shape))
            throw new XunitException($"{what}: shape [{string.Join(",", actual.shape)}], expected [{string.Join(",", expected.shape)}]");
        if (expected.numel() == 0) return;
        using var scope = NewDisposeScope();
        var e = expected.detach().cpu().to(float64);
        var a = actual.detach().cpu().to(float64);
        var excess = (a - e).abs() - (abs + rel * e.abs());
        var notFinite = ~(isfinite(a)) | ~(isfinite(e));
        if (notFinite.any().item<bool>())
            throw new XunitException($"{what}: non-finite values");
        var worst = excess.reshape(-1).argmax().item<long>();
        var worstExcess = excess.reshape(-1)[worst].item<double>();
        if (worstExcess > 0)
        {
            var ev = e.reshape(-1)[worst].item<double>();
            var av = a.reshape(-1)[worst].item<double>();
            var count = (excess > 0).sum().item<long>();
            throw new XunitException($"{what}: {count} of {e.numel()} elements out of tolerance; worst at flat {worst}: " +
                                     $"actual {av:R}, expected {ev:R}, |diff| {Math.Abs(av - ev):E3} (abs {abs}, rel {rel})");
        }
    }

    /// <summary>Same shape and identical values (integers, booleans, exact floats).</summary>
    public static void Equal(Tensor expected, Tensor actual, string what)
    {
        if (!expected.shape.SequenceEqual(actual.shape))
            throw new XunitException($"{what}: shape [{string.Join(",", actual.shape)}], expected [{string.Join(",", expected.shape)}]");
        if (expected.numel() == 0) return;
        using var scope = NewDisposeScope();
        var e = expected.detach().cpu().to(float64);
        var a = actual.detach().cpu().to(float64);
        var differ = (a != e).reshape(-1);
        var count = differ.sum().item<long>();
        if (count > 0)
        {
            var first = differ.nonzero()[0, 0].item<long>();
            throw new XunitException($"{what}: {count} of {e.numel()} elements differ; first at flat {first}: " +
                                     $"actual {a.reshape(-1)[first].item<double>():R}, expected {e.reshape(-1)[first].item<double>():R}");
        }
    }

    public static void Scalar(double expected, Tensor actual, double abs, double rel, string what) =>
        Close(tensor(expected, float64), actual.reshape(new long[0]), abs, rel, what);
}
