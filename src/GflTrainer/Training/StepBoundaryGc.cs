namespace GflTrainer.Training;

/// <summary>
/// Runs garbage collection and finalizers at step boundaries, on the training thread, while it is in managed code.
/// TorchSharp 0.107 releases implicitly created Scalars by finalizer without keeping them alive across the native
/// call (see <see cref="PinnedScalars"/>), so a collection that another thread (a loader worker) starts while this
/// thread is inside libtorch can free a Scalar that libtorch is about to read. Collecting here resets the allocation
/// budget every step, so collections started elsewhere in the middle of a step become rare; the cost is a gen-0
/// collection (well under a millisecond) per step and a full one every <see cref="FullEvery"/> steps.
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
