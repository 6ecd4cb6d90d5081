using GflTrainer.Runtime.Native;
using Serilog;

namespace GflTrainer.Runtime;

/// <summary><c>train.deterministic</c>: what mmengine's <c>set_random_seed(deterministic=True)</c> does
/// (<c>torch.use_deterministic_algorithms(True)</c>, <c>cudnn.deterministic = True</c>, <c>cudnn.benchmark = False</c>),
/// plus <c>torch.backends.mkldnn.deterministic</c> for oneDNN on the CPU. TorchSharp 0.107 marks
/// <c>use_deterministic_algorithms</c> "not implemented", so the switches of libtorch's <c>at::globalContext()</c> are
/// called by their exported names. With them every op takes its deterministic kernel and raises where there is none;
/// cuBLAS is only reproducible with a fixed workspace, so <c>CUBLAS_WORKSPACE_CONFIG=:4096:8</c> is set when the user
/// has not set it (cuBLAS reads it when its first handle is made, at the first matmul). On the CPU the default kernels
/// already repeat bit for bit (the resume tests compare so). The switches are process-wide, so every run sets them
/// both ways.</summary>
public static unsafe class DeterministicAlgorithms
{
    /// <summary>The cuBLAS setting PyTorch's reproducibility notes require with deterministic algorithms.</summary>
    public const string CublasWorkspace = ":4096:8";

    private static readonly Lazy<Api> Native = new(Api.Load);

    public static void Apply(bool deterministic, ILogger log)
    {
        if (deterministic)
            NativeEnvironment.SetNativeDefault("CUBLAS_WORKSPACE_CONFIG", CublasWorkspace);
        Set(deterministic);
        if (deterministic)
            log.Information("train.deterministic: deterministic algorithms only (an op without one stops the run), cuDNN " +
                "benchmark off, CUBLAS_WORKSPACE_CONFIG={Cublas}", Environment.GetEnvironmentVariable("CUBLAS_WORKSPACE_CONFIG"));
    }

    /// <summary>Sets libtorch's switches without logging (tests restore the default with <c>Set(false)</c>).</summary>
    public static void Set(bool deterministic)
    {
        var api = Native.Value;
        var context = api.GlobalContext();
        byte on = (byte)(deterministic ? 1 : 0);
        api.SetDeterministicAlgorithms(context, on, 0);
        api.SetDeterministicCuDnn(context, on);
        api.SetDeterministicMkldnn(context, on);
        // cuDNN autotuning picks kernels by timing, which differs run to run; PyTorch's default is off already.
        if (deterministic) api.SetBenchmarkCuDnn(context, 0);
    }

    /// <summary>Whether libtorch runs with deterministic algorithms only (<c>torch.are_deterministic_algorithms_enabled</c>).</summary>
    public static bool Enabled
    {
        get
        {
            var api = Native.Value;
            return api.DeterministicAlgorithms(api.GlobalContext()) != 0;
        }
    }

    /// <summary>Whether cuDNN is told to pick deterministic algorithms (<c>torch.backends.cudnn.deterministic</c>).</summary>
    public static bool CuDnnDeterministic
    {
        get
        {
            var api = Native.Value;
            return api.DeterministicCuDnn(api.GlobalContext()) != 0;
        }
    }

    /// <summary>at::Context members (Itanium ABI: <c>this</c> first, bool as one byte).</summary>
    private sealed class Api
    {
        public delegate* unmanaged<IntPtr> GlobalContext;
        public delegate* unmanaged<IntPtr, byte, byte, void> SetDeterministicAlgorithms;
        public delegate* unmanaged<IntPtr, byte> DeterministicAlgorithms;
        public delegate* unmanaged<IntPtr, byte, void> SetDeterministicCuDnn;
        public delegate* unmanaged<IntPtr, byte> DeterministicCuDnn;
        public delegate* unmanaged<IntPtr, byte, void> SetDeterministicMkldnn;
        public delegate* unmanaged<IntPtr, byte, void> SetBenchmarkCuDnn;

        public static Api Load()
        {
            const string feature = "train.deterministic (libtorch's determinism switches)";
            IntPtr Get(string symbol) => LibtorchLibrary.Export(symbol, feature);
            return new Api
            {
                GlobalContext = (delegate* unmanaged<IntPtr>)Get("_ZN2at13globalContextEv"),
                SetDeterministicAlgorithms = (delegate* unmanaged<IntPtr, byte, byte, void>)Get("_ZN2at7Context26setDeterministicAlgorithmsEbb"),
                DeterministicAlgorithms = (delegate* unmanaged<IntPtr, byte>)Get("_ZNK2at7Context23deterministicAlgorithmsEv"),
                SetDeterministicCuDnn = (delegate* unmanaged<IntPtr, byte, void>)Get("_ZN2at7Context21setDeterministicCuDNNEb"),
                DeterministicCuDnn = (delegate* unmanaged<IntPtr, byte>)Get("_ZNK2at7Context18deterministicCuDNNEv"),
                SetDeterministicMkldnn = (delegate* unmanaged<IntPtr, byte, void>)Get("_ZN2at7Context22setDeterministicMkldnnEb"),
                SetBenchmarkCuDnn = (delegate* unmanaged<IntPtr, byte, void>)Get("_ZN2at7Context17setBenchmarkCuDNNEb"),
            };
        }
    }
}
