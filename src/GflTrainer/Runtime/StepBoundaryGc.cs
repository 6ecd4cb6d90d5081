namespace GflTrainer.Runtime;

/// <summary>
/// Runs garbage collection and finalizers at step boundaries, on the training thread, while it is in managed code.
/// TorchSharp 0.107 releases implicitly created Scalars by finalizer without keeping them alive across the native
/// call (see <see cref="PinnedScalars"/>), so a collection that another thread (a loader worker) starts while this
/// thread is inside libtorch can free a Scalar that libtorch is about to read. Collecting here resets the allocation
/// budget every step, so collections started elsewhere in the middle of a step become rare; the cost is a gen-0
/// collection (well under a millisecond) per step and a full one every <see cref="FullEvery"/> steps.
/// It also bounds native memory: without collections the Scalars (tiny malloc blocks, hundreds per step) pile up
/// among the freed activation blocks and glibc's heap fragments step after step. Measured with <c>gfl bench
/// train-step</c> (R18, 192x192): peak RSS grew from 590 MB to 875 MB over 25 steps without collections (no
/// collection ever ran: the managed heap stays under 3 MB) and stayed at 570-590 MB with them.
/// </summary>
internal static class StepBoundaryGc
{
    public const int FullEvery = 50;

    public static void AfterStep(long step)
    {
        GC.Collect(step % FullEvery == 0 ? GC.MaxGeneration : 0, GCCollectionMode.Forced, blocking: true, compacting: false);
        GC.WaitForPendingFinalizers();
    }
}
