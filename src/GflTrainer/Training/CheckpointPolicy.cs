using GflTrainer.Checkpoints;
using GflTrainer.Config;
using GflTrainer.Data;
using GflTrainer.Model;
using Serilog;
using TorchSharp;

namespace GflTrainer.Training;

/// <summary>Which checkpoints a run writes and what goes into them (mmdetection's CheckpointHook): <c>epoch_N</c>
/// every <c>train.checkpoint.interval</c> epochs and after the last (older ones pruned to <c>keep_last</c>),
/// <c>last</c> after every epoch and on interrupt, <c>best</c> on a new best bbox AP, <c>nan_iter_N</c> before a
/// non-finite step. A checkpoint holds the weights, the momentum, <see cref="TrainState"/>, the torch RNG, the fp16
/// loss scale, the label map, the resolved config and the run's fingerprint and accepted changes
/// (<see cref="RunRecord"/>), so <see cref="Restore"/> continues bit-exactly and a resume can tell a changed run.
/// In a data-parallel run every rank holds the same state and only rank 0 writes (<paramref name="writes"/>); the
/// others get the paths rank 0 writes to.</summary>
internal sealed class CheckpointPolicy(CheckpointStore store, CheckpointConfig config, int epochs, TrainState state,
    GflDetector model, Sgd optimizer, LossScaler? scaler, CategoryMap categories, string configYaml, long seed, RunRecord record,
    ILogger log, bool writes = true)
{
    public CheckpointStore Store => store;

    /// <summary>False on data-parallel ranks other than 0, which only learn the paths rank 0 writes.</summary>
    public bool Writes => writes;

    /// <summary>Continues from <paramref name="ck"/>: weights, momentum, state, RNG and loss scale.</summary>
    public void Restore(LoadedCheckpoint ck)
    {
        WeightLoader.Load(model, ck.Model.Tensors, WeightNameMapping.Identity, strict: true, sourceName: ck.Directory);
        if (ck.Optimizer is not null) optimizer.LoadMomentum(ck.Optimizer.Tensors, ck.Directory);
        var m = ck.Meta;
        state.Epoch = m.Epoch; state.Iteration = m.Iteration; state.IterInEpoch = m.IterInEpoch; state.BestAp = m.BestAp;
        if (!string.IsNullOrEmpty(m.TorchRngState))
        {
            using var rng = torch.tensor(Convert.FromBase64String(m.TorchRngState), torch.ScalarType.Byte);
            torch.random.set_rng_state(rng);
        }
        scaler?.Restore(m.LossScale, m.LossScaleCleanSteps);
        log.Information("resumed from {Dir}: epoch {Epoch}, iteration {Iter} ({InEpoch} batches into the epoch)",
            ck.Directory, state.Epoch + 1, state.Iteration, state.IterInEpoch);
    }

    /// <summary>After epoch <paramref name="done"/> (1-based): <c>epoch_N</c> when due, then <c>last</c>; both point at
    /// the start of the next epoch. Returns the path of <c>last</c>.</summary>
    public string AfterEpoch(int done)
    {
        if (done % config.Interval == 0 || done == epochs)
        {
            Save($"epoch_{done}", "epoch", done, 0);
            if (config.KeepLast is int keep && writes) store.Prune(keep);
        }
        return Save("last", done == epochs ? "final" : "epoch", done, 0);
    }

    /// <summary>Stopped by a signal: <c>last</c> at the current iteration, so a resume redoes nothing.</summary>
    public string OnInterrupt() => Save("last", "interrupt", state.Epoch, state.IterInEpoch);

    /// <summary>The watchdog stopped a run hung while waiting for data (no weight changed in that iteration):
    /// <c>last</c> at the start of the hung iteration.</summary>
    public string OnHang() => UnreadSteps?.Invoke() is > 0 and var n
        ? throw new InvalidOperationException($"{n} steps since the last loss read are unread (runtime.loss_reads: log_interval); " +
            "one may have been refused on the device for a non-finite value, so the previous checkpoint stays the resume point")
        : Save("last", "hang", state.Epoch, state.IterInEpoch);

    /// <summary>Steps whose loss values the trainer has not read back yet (deferred reads), or null: none ever are. A
    /// refused step among them would leave the weights behind the state, so no <c>last</c> is written over them.</summary>
    public Func<int>? UnreadSteps { get; set; }

    /// <summary>Stopped near the cgroup memory limit, between iterations: <c>last</c> at the current iteration.</summary>
    public string OnMemoryLimit() => Save("last", "memory", state.Epoch, state.IterInEpoch);

    /// <summary>An evaluation after epoch <paramref name="done"/> scored <paramref name="ap"/>: writes <c>best</c> when it is
    /// the best so far and returns its path, else null.</summary>
    public string? OnEvaluated(int done, double ap) => state.OfferAp(ap) ? Save("best", "best", done, 0) : null;

    /// <summary>The weights as they were before the failing step (no update was made), to <c>nan_iter_N</c>; null if that
    /// fails, which is logged but must not hide the original error.</summary>
    public string? SaveDiagnostic()
    {
        try { return Save($"nan_iter_{state.Iteration + 1}", "nan-diagnostic", state.Epoch, state.IterInEpoch); }
        catch (Exception e) { log.Error("could not write the diagnostic checkpoint: {Message}", e.Message); return null; }
    }

    /// <param name="epoch">0-based epoch a resumed run continues in.</param>
    /// <param name="iterInEpoch">batches of that epoch already done.</param>
    private string Save(string name, string reason, int epoch, long iterInEpoch)
    {
        if (!writes) return Path.Combine(store.Root, name);
        string rng;
        using (var generator = torch.random.get_rng_state())
            rng = Convert.ToBase64String(generator.data<byte>().ToArray());
        var meta = new TrainingCheckpoint(epoch, state.Iteration, iterInEpoch, seed, rng, scaler?.Scale ?? 1,
            scaler?.CleanSteps ?? 0,
            categories.Categories.Select((c, i) => new CheckpointClass(i, c.Id, c.Name)).ToList(),
            configYaml, state.BestAp, reason) { Fingerprint = record.Fingerprint, Changes = record.Changes };
        return store.Save(name, model.state_dict(), optimizer.MomentumBuffers.ToDictionary(kv => kv.Key, kv => kv.Value), meta);
    }
}

/// <summary>What every checkpoint of a run records about the run itself: its fingerprint and the changes accepted on
/// resume (<see cref="RunChanges"/>).</summary>
internal sealed record RunRecord(RunFingerprint Fingerprint, IReadOnlyList<string> Changes);
