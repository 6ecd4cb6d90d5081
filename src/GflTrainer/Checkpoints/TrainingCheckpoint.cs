namespace GflTrainer.Checkpoints;

/// <summary>Where a run stands, saved beside the weights in <c>meta.json</c>.</summary>
/// <param name="Epoch">0-based epoch in progress (or about to start when <paramref name="IterInEpoch"/> is 0).</param>
/// <param name="Iteration">global iterations completed.</param>
/// <param name="IterInEpoch">batches of <paramref name="Epoch"/> already consumed: the loader restarts after them.</param>
/// <param name="Seed">run seed (data order and augmentation derive from (seed, epoch, index)).</param>
/// <param name="TorchRngState">torch CPU generator state, base64.</param>
/// <param name="LossScale">fp16 loss scale and its clean-step counter (1 / 0 when unused).</param>
/// <param name="Classes">contiguous label -> (COCO category id, name), so eval/predict write original ids.</param>
/// <param name="ConfigYaml">the resolved configuration the run used.</param>
/// <param name="BestAp">best bbox AP so far (NaN before the first evaluation).</param>
/// <param name="Reason">why it was written: epoch, interrupt, nan-diagnostic, best, final.</param>
public sealed record TrainingCheckpoint(
    int Epoch,
    long Iteration,
    long IterInEpoch,
    long Seed,
    string TorchRngState,
    double LossScale,
    int LossScaleCleanSteps,
    IReadOnlyList<CheckpointClass> Classes,
    string ConfigYaml,
    double BestAp,
    string Reason)
{
    /// <summary>Format of meta.json; bumped on incompatible change.</summary>
    public int Format { get; init; } = 1;

    /// <summary>UTC time of writing.</summary>
    public DateTime WrittenUtc { get; init; } = DateTime.UtcNow;

    /// <summary>The run's data and software at the time (null in checkpoints written before fingerprints).</summary>
    public RunFingerprint? Fingerprint { get; init; }

    /// <summary>Changes accepted on resume with <c>--resume-changed</c> ("iteration N: key: old -> new"), oldest first.
    /// Empty for a run that is exactly what its configuration and data say.</summary>
    public IReadOnlyList<string> Changes { get; init; } = [];

    /// <summary>Whether the run went from start to here without an accepted change.</summary>
    public bool Reproducible => Changes.Count == 0;
}

/// <summary>One class of the contiguous label map.</summary>
public sealed record CheckpointClass(int Label, long CategoryId, string Name);
