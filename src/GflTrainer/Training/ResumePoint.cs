using GflTrainer.Checkpoints;
using Serilog;

namespace GflTrainer.Training;

/// <summary>Which checkpoint a run continues from. <c>--resume PATH</c>: that one, and a missing, truncated or corrupt
/// file is an error naming expected and actual size and digest (never a silent fresh start). <c>--resume</c> and
/// <c>--auto-resume</c>: the newest valid checkpoint of the work dir (<see cref="CheckpointStore.LoadNewestValid"/>),
/// warning about each corrupt one passed over, so an unattended job survives a damaged <c>last</c>. With
/// <c>--auto-resume</c> an empty work dir starts fresh; checkpoints that all fail to load stop the run instead of
/// starting over on top of them.</summary>
internal static class ResumePoint
{
    public static LoadedCheckpoint? Select(TrainRequest request, CheckpointStore store, ILogger log)
    {
        if (request.Resume is { Length: > 0 } path)
        {
            if (!Directory.Exists(path) && !File.Exists(path))
                throw new GflConfigException($"--resume: checkpoint not found: {path}") { Key = "--resume" };
            return CheckpointStore.Load(path);
        }
        if (request.Resume is null && !request.AutoResume) return null;

        string option = request.Resume is not null ? "--resume" : "--auto-resume";
        var skipped = new List<string>();
        var found = store.LoadNewestValid((dir, reason) =>
        {
            skipped.Add($"{dir}: {reason}");
            log.Warning("{Option}: skipping checkpoint {Dir}: {Reason}", option, dir, reason);
        });
        if (found is not null)
        {
            log.Information("{Option}: continuing from {Dir}{Note}", option, found.Directory,
                skipped.Count > 0 ? $" (the newest valid checkpoint; {skipped.Count} skipped)" : "");
            return found;
        }
        if (skipped.Count > 0)
            throw new CheckpointException(store.Root, $"{option}: no checkpoint loads; refusing to start over on top of them:\n  " +
                string.Join("\n  ", skipped));
        if (request.Resume is not null)
            throw new GflConfigException($"--resume: no checkpoint in {store.Root}") { Key = "--resume" };
        log.Information("--auto-resume: no checkpoint yet, starting fresh");
        return null;
    }
}
