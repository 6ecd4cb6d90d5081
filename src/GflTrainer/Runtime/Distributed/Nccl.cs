using System.Runtime.InteropServices;

namespace GflTrainer.Runtime.Distributed;

/// <summary>128 opaque bytes that name one NCCL communicator (<c>ncclUniqueId</c>); rank 0 makes it, the others receive it
/// through <see cref="TcpRendezvous"/>. Passed by value to ncclCommInitRank, as in nccl.h.</summary>
[StructLayout(LayoutKind.Sequential, Size = 128)]
internal unsafe struct NcclUniqueId
{
    public fixed byte Internal[128];
}

/// <summary>The part of NVIDIA NCCL's C API (nccl.h, NCCL 2.10 or newer for ncclAvg) that data-parallel training uses,
/// bound at run time from libnccl.so.2 (NVIDIA's package, or the <c>nvidia-nccl-cu12</c> wheel PyTorch installs: point
/// GFL_NCCL_LIBRARY at its lib/libnccl.so.2), plus <c>cudaSetDevice</c> from the CUDA runtime libtorch uses. Every call
/// is enqueued on the legacy default stream (0), the stream libtorch's kernels use when none is set, so NCCL and
/// libtorch work on a tensor in order.</summary>
internal sealed unsafe class Nccl
{
    public const int Float32 = 7, Float64 = 8, Uint8 = 1, Int64 = 4;   // ncclDataType_t
    public const int Sum = 0, Avg = 4;                                 // ncclRedOp_t (ncclAvg: NCCL >= 2.10)

    public delegate* unmanaged<int*, int> GetVersion;
    public delegate* unmanaged<NcclUniqueId*, int> GetUniqueId;
    public delegate* unmanaged<nint*, int, NcclUniqueId, int, int> CommInitRank;
    public delegate* unmanaged<nint, int> CommDestroy;
    public delegate* unmanaged<nint, nint, nuint, int, int, nint, nint, int> AllReduce;
    public delegate* unmanaged<nint, nint, nuint, int, int, nint, nint, int> Broadcast;
    public delegate* unmanaged<nint, nint, nuint, int, nint, nint, int> AllGather;
    public delegate* unmanaged<int, nint> GetErrorString;
    public delegate* unmanaged<int, int> CudaSetDevice;
    public delegate* unmanaged<nint*, uint, int> CudaStreamCreateWithFlags;
    public delegate* unmanaged<nint, int> CudaStreamDestroy;
    public delegate* unmanaged<nint*, uint, int> CudaEventCreateWithFlags;
    public delegate* unmanaged<nint, int> CudaEventDestroy;
    public delegate* unmanaged<nint, nint, int> CudaEventRecord;
    public delegate* unmanaged<nint, nint, uint, int> CudaStreamWaitEvent;
    public delegate* unmanaged<int, nint> CudaGetErrorString;
    public const uint StreamNonBlocking = 1, EventDisableTiming = 2;   // cudaStreamNonBlocking, cudaEventDisableTiming

    static readonly Lazy<Nccl> Instance = new(Load);

    public static Nccl Api => Instance.Value;

    public int Version { get; private set; }

    static Nccl Load()
    {
        var candidates = new List<string>();
        if (Environment.GetEnvironmentVariable("GFL_NCCL_LIBRARY") is { Length: > 0 } explicitPath) candidates.Add(explicitPath);
        candidates.Add("libnccl.so.2");
        nint lib = 0;
        foreach (var c in candidates)
            if (NativeLibrary.TryLoad(c, out lib)) break;
        if (lib == 0)
            throw new GflConfigException("train.dist.backend nccl: libnccl.so.2 not found; install NVIDIA's libnccl2, or set " +
                "GFL_NCCL_LIBRARY to the libnccl.so.2 of PyTorch's nvidia-nccl-cu12 wheel (site-packages/nvidia/nccl/lib)")
                { Key = "train.dist.backend" };
        nint Get(nint from, string symbol, string library) => NativeLibrary.TryGetExport(from, symbol, out var p) ? p
            : throw new GflConfigException($"train.dist.backend nccl: {library} has no {symbol}") { Key = "train.dist.backend" };
        var api = new Nccl
        {
            GetVersion = (delegate* unmanaged<int*, int>)Get(lib, "ncclGetVersion", "libnccl"),
            GetUniqueId = (delegate* unmanaged<NcclUniqueId*, int>)Get(lib, "ncclGetUniqueId", "libnccl"),
            CommInitRank = (delegate* unmanaged<nint*, int, NcclUniqueId, int, int>)Get(lib, "ncclCommInitRank", "libnccl"),
            CommDestroy = (delegate* unmanaged<nint, int>)Get(lib, "ncclCommDestroy", "libnccl"),
            AllReduce = (delegate* unmanaged<nint, nint, nuint, int, int, nint, nint, int>)Get(lib, "ncclAllReduce", "libnccl"),
            Broadcast = (delegate* unmanaged<nint, nint, nuint, int, int, nint, nint, int>)Get(lib, "ncclBroadcast", "libnccl"),
            AllGather = (delegate* unmanaged<nint, nint, nuint, int, nint, nint, int>)Get(lib, "ncclAllGather", "libnccl"),
            GetErrorString = (delegate* unmanaged<int, nint>)Get(lib, "ncclGetErrorString", "libnccl"),
        };
        int version;
        api.Check(api.GetVersion(&version), "ncclGetVersion");
        api.Version = version;
        // NCCL_VERSION_CODE is major*10000 + minor*100 + patch since 2.9 (major*1000 + minor*100 + patch before).
        if (version < 21000)
            throw new GflConfigException($"train.dist.backend nccl: NCCL {version} is older than 2.10 (no ncclAvg)") { Key = "train.dist.backend" };
        // cudaSetDevice of the CUDA runtime libtorch loaded: NCCL works on the calling thread's current device.
        var cudart = LoadedCudaRuntime() ?? throw new GflConfigException(
            "train.dist.backend nccl: no CUDA runtime (libcudart.so) is loaded; is this a CUDA build of libtorch?") { Key = "train.dist.backend" };
        api.CudaSetDevice = (delegate* unmanaged<int, int>)Get(cudart, "cudaSetDevice", "libcudart");
        api.CudaStreamCreateWithFlags = (delegate* unmanaged<nint*, uint, int>)Get(cudart, "cudaStreamCreateWithFlags", "libcudart");
        api.CudaStreamDestroy = (delegate* unmanaged<nint, int>)Get(cudart, "cudaStreamDestroy", "libcudart");
        api.CudaEventCreateWithFlags = (delegate* unmanaged<nint*, uint, int>)Get(cudart, "cudaEventCreateWithFlags", "libcudart");
        api.CudaEventDestroy = (delegate* unmanaged<nint, int>)Get(cudart, "cudaEventDestroy", "libcudart");
        api.CudaEventRecord = (delegate* unmanaged<nint, nint, int>)Get(cudart, "cudaEventRecord", "libcudart");
        api.CudaStreamWaitEvent = (delegate* unmanaged<nint, nint, uint, int>)Get(cudart, "cudaStreamWaitEvent", "libcudart");
        api.CudaGetErrorString = (delegate* unmanaged<int, nint>)Get(cudart, "cudaGetErrorString", "libcudart");
        return api;
    }

    static nint? LoadedCudaRuntime()
    {
        foreach (var line in File.ReadLines("/proc/self/maps"))
        {
            int slash = line.IndexOf('/');
            if (slash < 0) continue;
            var path = line[slash..];
            if (Path.GetFileName(path).StartsWith("libcudart.so", StringComparison.Ordinal) && NativeLibrary.TryLoad(path, out var lib))
                return lib;
        }
        foreach (var name in new[] { "libcudart.so.13", "libcudart.so.12", "libcudart.so" })
            if (NativeLibrary.TryLoad(name, out var lib)) return lib;
        return null;
    }

    /// <summary>Throws with the CUDA runtime's message for a non-zero cudaError_t.</summary>
    public void CheckCuda(int result, string what)
    {
        if (result == 0) return;
        throw new GflRuntimeException($"{what} failed: {Marshal.PtrToStringUTF8(CudaGetErrorString(result)) ?? $"CUDA error {result}"}");
    }

    public void Check(int result, string what)
    {
        if (result == 0) return;
        var text = Marshal.PtrToStringUTF8(GetErrorString(result)) ?? $"error {result}";
        throw new GflRuntimeException($"{what} failed: {text} (NCCL_DEBUG=INFO shows why)");
    }
}
