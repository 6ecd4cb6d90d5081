using System.Diagnostics;
using GflTrainer.Data;
using GflTrainer.Model;
using GflTrainer.Runtime;
using Serilog;
using static TorchSharp.torch;

namespace GflTrainer.Training;

/// <summary>What the loop needs besides its parts: <c>train.epochs</c>, <c>train.log_interval</c>, the batch size
/// (images/s) and what the start-of-run line reports.</summary>
/// <param name="DeferredLossReads">runtime.loss_reads resolved to log_interval: the steps read nothing back; their losses
/// are read every <paramref name="LogInterval"/> steps, at the end of each epoch and before a stop
/// (<see cref="DeferredLosses"/>).</param>
internal sealed record TrainLoopOptions(int Epochs, int LogInterval, int BatchSize, string Device, string Amp, long Seed,
    bool DeferredLossReads = false);

/// <summary>The parts one training run is made of; <see cref="TrainRun"/> builds them from the configuration, and a
/// distributed or multi-dataset run builds its own (another loader, a collective in the step, logs on rank 0 only).</summary>
/// <param name="Evaluation">null: no validation set.</param>
/// <param name="Watchdog">null: train.watchdog is off.</param>
/// <param name="Memory">null: no cgroup memory limit, or train.memory_limit_fraction is off.</param>
/// <param name="Ranks">the data-parallel collective (null: one process): the ranks agree on stopping.</param>
internal sealed record TrainerParts(GflDetector Model, TrainStep Step, Sgd Optimizer, LrSchedule Schedule, DetectionLoader Loader,
    TrainState State, CheckpointPolicy Checkpoints, PeriodicEvaluation? Evaluation, RunLog RunLog, StepWatchdog? Watchdog = null,
    MemoryGuard? Memory = null, ICollective? Ranks = null);

/// <summary>
/// The training loop of <c>gfl train</c>: per batch the learning rate of the iteration, one <see cref="TrainStep"/> in
/// its own dispose scope, progress and the run log; per epoch the checkpoints, the periodic evaluation and the plots.
/// It stops after the current iteration on a signal (saving <c>last</c>) and hard on a non-finite loss or gradient
/// (saving a diagnostic checkpoint).
/// </summary>
/// <param name="terminal">where the live progress bar goes, or null for log lines only.</param>
internal sealed class Trainer(TrainLoopOptions options, TrainerParts parts, ILogger log, TextWriter? terminal = null)
{
    public TrainResult Run(string workDir, CancellationToken cancel)
    {
        var (model, step, sgd, schedule, loader, state, checkpoints, evaluation, runLog, watchdog, memory, ranks) = parts;
        int itersPerEpoch = loader.BatchesPerEpoch;
        long totalIters = (long)itersPerEpoch * options.Epochs;
        model.train();
        log.Information("training: {Epochs} epochs x {Iters} iterations, batch {Batch}, {Params:N0} trainable parameters, device {Device}, amp {Amp}, seed {Seed}, losses read {Reads}",
            options.Epochs, itersPerEpoch, options.BatchSize, model.parameters().Where(p => p.requires_grad).Sum(p => p.numel()),
            options.Device, options.Amp, options.Seed, options.DeferredLossReads ? $"every {options.LogInterval} iterations" : "every iteration");
        var account = new StepAccounting(new ProgressReporter(log, totalIters, options.LogInterval, terminal), new LossWindow(), runLog,
            options, itersPerEpoch);
        var stepWatch = new Stopwatch();
        using var deferred = options.DeferredLossReads ? new DeferredLosses() : null;
        var sinceRead = Stopwatch.StartNew();
        if (deferred is not null) checkpoints.UnreadSteps = () => deferred.Count;
        string lastCkpt = checkpoints.Store.Find("last") ?? "";

        for (; state.Epoch < options.Epochs; state.Epoch++, state.IterInEpoch = 0)
        {
            using var batches = loader.Epoch(state.Epoch, (int)state.IterInEpoch).GetEnumerator();
            sinceRead.Restart();   // the steps' wall time, without the previous epoch's evaluation and checkpoints
            while (true)
            {
                stepWatch.Restart();
                watchdog?.Enter("data", state.Iteration + 1);
                if (!batches.MoveNext()) break;
                watchdog?.Enter("step", state.Iteration + 1);
                double dataTime = stepWatch.Elapsed.TotalSeconds;
                double lr = schedule.At(state.Iteration, state.Epoch);
                sgd.LearningRate = lr;
                TrainStepResult? result = null;
                using (var batch = batches.Current)
                using (NewDisposeScope())
                {
                    var pads = batch.Metas.Select(m => (m.PadHeight, m.PadWidth)).ToList();
                    if (deferred is not null)
                        deferred.Add(step.RunDeferred(batch.Images, batch.GtBoxes, batch.GtLabels, pads, batch.Targets),
                            state.Iteration + 1, state.Epoch, state.IterInEpoch + 1, lr, dataTime);
                    else
                        result = step.Run(batch.Images, batch.GtBoxes, batch.GtLabels, pads, batch.Targets);
                }
                if (result is not null) Check(result, checkpoints, state);   // with the state before the step, as its checkpoint
                state.Iteration++; state.IterInEpoch++;
                if (result is not null)
                {
                    watchdog?.Complete();
                    StepBoundaryGc.AfterStep(state.Iteration);
                    account.Add(state, result.Losses, lr, stepWatch.Elapsed.TotalSeconds, dataTime);
                }
                bool readPoint = account.IsLogPoint(state);
                // Ranks that defer their reads agree on stopping at the read points only: the agreement is an all-reduce of
                // host values, a device round trip per iteration on NCCL. A signal or the memory guard then acts within
                // train.log_interval iterations.
                var (stop, over) = deferred is not null && ranks is { WorldSize: > 1 } && !readPoint
                    ? (false, null)
                    : StopRequests(cancel.IsCancellationRequested, memory?.Check(), ranks);
                if (deferred is not null)
                {
                    // At each log line, the end of the epoch and before stopping; inside the step's watch, so that a
                    // device that hangs is caught there.
                    if (stop || over is not null || readPoint)
                        ReadDeferred(deferred, sinceRead, checkpoints, state, account);
                    watchdog?.Complete();
                    StepBoundaryGc.AfterStep(state.Iteration);
                }
                if (over is not null)
                {
                    watchdog?.Pause();
                    lastCkpt = checkpoints.OnMemoryLimit();
                    throw new MemoryLimitException($"{over}: saved {lastCkpt}; lower data.batch_size or data.workers, or raise " +
                        "the limit, then continue with --auto-resume");
                }
                if (stop)
                {
                    watchdog?.Pause();
                    lastCkpt = checkpoints.OnInterrupt();
                    if (checkpoints.Writes) log.Warning("interrupted: saved {Path}; continue with --resume", lastCkpt);
                    return Result(workDir, lastCkpt, interrupted: true);
                }
            }
            // An epoch can end before itersPerEpoch (unreadable images skipped): nothing stays unread past its checkpoint.
            if (deferred is not null) ReadDeferred(deferred, sinceRead, checkpoints, state, account);
            watchdog?.Pause();
            int done = state.Epoch + 1;
            if (loader.BadImages > 0) log.Warning("{Count} unreadable training images skipped so far", loader.BadImages);
            lastCkpt = checkpoints.AfterEpoch(done);
            if (evaluation is not null && evaluation.IsDue(done))
            {
                var metrics = evaluation.Run(model, done, state.Iteration, cancel, watchdog);
                watchdog?.Pause();
                if (metrics is not null)   // null on data-parallel ranks other than 0
                {
                    state.LastAp = metrics.AP; state.LastAp50 = metrics.AP50;
                    if (checkpoints.OnEvaluated(done, metrics.AP) is { } best)
                        log.Information("new best bbox AP {AP:F4}: {Path}", metrics.AP, best);
                }
            }
            runLog.RenderPlotsAndReport();
        }
        return Result(workDir, lastCkpt, interrupted: false);
    }

    /// <summary>Whether to stop after this iteration (a signal) and why to stop for memory. In a data-parallel run all
    /// ranks must stop at the same iteration, or the others would wait forever in the next all-reduce: one rank's
    /// request stops every rank (one small all-reduce per iteration).</summary>
    static (bool Stop, string? MemoryOver) StopRequests(bool cancelled, string? memoryOver, ICollective? ranks)
    {
        if (ranks is not { WorldSize: > 1 }) return (cancelled, memoryOver);
        var any = ranks.AllReduceMean([cancelled ? 1 : 0, memoryOver is null ? 0 : 1]);
        return (any[0] > 0, memoryOver ?? (any[1] > 0 ? "memory: another rank of this run is near its cgroup memory limit" : null));
    }

    /// <summary>Reads the deferred steps and accounts for them as the loop does for a step that reads at once: the first
    /// step that halted the run ends it (as <see cref="Check"/>; the device skipped it and every later update, so the
    /// weights are those before it, and the state is set back to it for the diagnostic checkpoint), the others go to
    /// the progress, the loss window and, at log points, the run log. Each step is given the mean wall time of the
    /// steps read together: the host only queued them, the device's time shows in this read.</summary>
    private void ReadDeferred(DeferredLosses deferred, Stopwatch sinceRead, CheckpointPolicy checkpoints, TrainState state,
        StepAccounting account)
    {
        int n = deferred.Count;
        if (n == 0) return;
        var steps = deferred.Read(parts.Step.LossTermNames!);
        double perStep = sinceRead.Elapsed.TotalSeconds / n;
        sinceRead.Restart();
        var (iteration, epoch, iterInEpoch) = (state.Iteration, state.Epoch, state.IterInEpoch);
        foreach (var s in steps)
        {
            if (!s.Applied && !s.Halted)
                log.Debug("fp16 overflow at iteration {Iter}: step skipped, loss scale backed off on the device", s.Iteration);
            else if (!s.Applied)
            {
                (state.Iteration, state.Epoch, state.IterInEpoch) = (s.Iteration - 1, s.Epoch, s.IterInEpoch - 1);
                if (!double.IsFinite(s.Losses.Total))
                    throw new NonFiniteLossException(s.Iteration, s.Epoch + 1, s.Losses.ToString(), checkpoints.SaveDiagnostic());
                var bad = parts.Step.FirstRefusedGradient()
                    ?? throw new InvalidOperationException($"iteration {s.Iteration}: the update was refused with finite losses and gradients");
                throw new NonFiniteGradientException(s.Iteration, s.Epoch + 1, bad, checkpoints.SaveDiagnostic());
            }
            (state.Iteration, state.Epoch, state.IterInEpoch) = (s.Iteration, s.Epoch, s.IterInEpoch);
            account.Add(state, s.Losses, s.LearningRate, perStep, s.DataSeconds);
        }
        (state.Iteration, state.Epoch, state.IterInEpoch) = (iteration, epoch, iterInEpoch);
    }

    /// <summary>Where a finished step's losses go: the progress, the loss window and, every log_interval and at the end
    /// of an epoch, the run log. <paramref name="State"/> of <see cref="Add"/> is at that step (1-based iteration).</summary>
    private sealed record StepAccounting(ProgressReporter Progress, LossWindow Window, RunLog RunLog, TrainLoopOptions Options,
        int ItersPerEpoch)
    {
        public void Add(TrainState state, Training.Losses.LossScalars losses, double lr, double stepSeconds, double dataSeconds)
        {
            Window.Add(losses, stepSeconds, dataSeconds);
            Progress.Update(state.Epoch + 1, Options.Epochs, state.IterInEpoch, ItersPerEpoch, state.Iteration, losses, lr,
                stepSeconds, Options.BatchSize);
            if (IsLogPoint(state)) RunLog.WriteTrain(state, ItersPerEpoch, lr, Window.Drain());
        }

        /// <summary>Every log_interval iterations and at the end of an epoch: a run-log line, and a read of deferred steps.</summary>
        public bool IsLogPoint(TrainState state) => state.Iteration % Options.LogInterval == 0 || state.IterInEpoch == ItersPerEpoch;
    }

    /// <summary>A non-finite loss (no backward ran) or gradient (no update was made) ends the run, after saving the
    /// weights as they were before the step; an fp16 overflow only skips the step.</summary>
    private void Check(TrainStepResult result, CheckpointPolicy checkpoints, TrainState state)
    {
        if (!result.LossFinite)
            throw new NonFiniteLossException(state.Iteration + 1, state.Epoch + 1, result.Losses.ToString(), checkpoints.SaveDiagnostic());
        var outcome = result.Update!.Value;
        if (outcome.NonFinite is { } bad)
            throw new NonFiniteGradientException(state.Iteration + 1, state.Epoch + 1, bad, checkpoints.SaveDiagnostic());
        if (!outcome.Applied)
            log.Debug("fp16 overflow at iteration {Iter}: step skipped, loss scale now {Scale}", state.Iteration + 1,
                parts.Step.Scaler?.Scale);
    }

    private TrainResult Result(string workDir, string lastCkpt, bool interrupted)
    {
        var s = parts.State;
        return new(workDir, s.Epoch, s.Iteration, s.LastAp, s.LastAp50, double.IsNaN(s.BestAp) ? null : s.BestAp, lastCkpt, interrupted);
    }
}
