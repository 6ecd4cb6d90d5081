namespace GflTrainer.Runtime.Native;

/// <summary>
/// The OpenMP team size of libtorch's parallel regions started by the calling thread. libtorch's CPU kernels size their
/// teams from <c>omp_get_max_threads()</c>, a per-thread setting that a thread .NET created starts at the core count:
/// every loader worker that runs tensor code (the targets built ahead) would start a full team, W workers x N threads
/// on N cores, which mostly spin and wait for each other. PyTorch's DataLoader sets one thread in each worker
/// (<c>torch.set_num_threads(1)</c> in its worker loop) for the same reason; here the worker threads share the process,
/// so only the calling thread's setting changes (<c>omp_set_num_threads</c>, found through libtorch_cpu's dependencies,
/// the libgomp it was built with) and the training step keeps its threads.
/// </summary>
internal static unsafe class OpenMpThreads
{
    // 0 where libtorch was built without OpenMP (its native thread pool has no per-thread setting to change).
    static readonly Lazy<nint> SetNumThreads = new(() =>
    {
        try { return LibtorchLibrary.Export("omp_set_num_threads", "loader worker threads"); }
        catch (GflRuntimeException) { return 0; }
    });

    /// <summary>Parallel regions that this thread starts from now on use at most <paramref name="threads"/> threads.
    /// A hint for speed, so a libtorch without OpenMP is not an error: false then, and nothing changes.</summary>
    public static bool LimitCallingThread(int threads)
    {
        // libtorch initialises each thread's team size to its global count on the thread's first call into it
        // (at::internal::lazy_init_num_threads); made first, so that it cannot undo the limit later.
        _ = TorchSharp.torch.get_num_threads();
        if (SetNumThreads.Value == 0) return false;
        ((delegate* unmanaged<int, void>)SetNumThreads.Value)(threads);
        return true;
    }
}
