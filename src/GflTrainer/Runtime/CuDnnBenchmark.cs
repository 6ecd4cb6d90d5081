using GflTrainer.Runtime.Native;
using Serilog;

namespace GflTrainer.Runtime;

/// <summary>
/// <c>runtime.cudnn_benchmark</c>: <c>torch.backends.cudnn.benchmark</c>, cuDNN timing its convolution algorithms for
/// each new input shape and keeping the fastest. It pays when the shapes repeat (a fixed input size, few aspect groups)
/// and costs a tuning pass per new shape otherwise, which is why mmdetection's <c>env_cfg</c> leaves it off for
/// detection's varying sizes; off here too. TorchSharp 0.107 has no binding, so libtorch's
/// <c>at::globalContext().setBenchmarkCuDNN</c> is called by its exported name (as <see cref="DeterministicAlgorithms"/>).
/// No effect on the CPU. The switch is process-wide, so every command that runs a model sets it both ways.
/// </summary>
public static unsafe class CuDnnBenchmark
{
    private static readonly Lazy<(nint Context, nint Set, nint Get)> Native = new(() =>
    {
        const string feature = "runtime.cudnn_benchmark (libtorch's cuDNN switch)";
        return (LibtorchLibrary.Export("_ZN2at13globalContextEv", feature),
            LibtorchLibrary.Export("_ZN2at7Context17setBenchmarkCuDNNEb", feature),
            LibtorchLibrary.Export("_ZNK2at7Context14benchmarkCuDNNEv", feature));
    });

    /// <param name="deterministic">train.deterministic: autotuning picks kernels by timing, so it is refused with it
    /// (the config validator says so first).</param>
    public static void Apply(bool enabled, bool deterministic, ILogger log)
    {
        if (enabled && deterministic)
            throw new GflConfigException("runtime.cudnn_benchmark cannot be combined with train.deterministic (autotuning picks kernels by timing)")
                { Key = "runtime.cudnn_benchmark" };
        Enabled = enabled;
        if (enabled) log.Information("runtime.cudnn_benchmark: cuDNN autotunes convolutions per input shape");
    }

    /// <summary>Whether cuDNN autotuning is on (<c>torch.backends.cudnn.benchmark</c>).</summary>
    public static bool Enabled
    {
        get
        {
            var (context, _, get) = Native.Value;
            var ctx = ((delegate* unmanaged<nint>)context)();
            return ((delegate* unmanaged<nint, byte>)get)(ctx) != 0;
        }
        set
        {
            var (context, set, _) = Native.Value;
            var ctx = ((delegate* unmanaged<nint>)context)();
            ((delegate* unmanaged<nint, byte, void>)set)(ctx, (byte)(value ? 1 : 0));
        }
    }
}
