using GflTrainer.Checkpoints;
using GflTrainer.Config;
using GflTrainer.Data;
using GflTrainer.Model;
using Serilog;
using TorchSharp;
using GflTrainer.Coco;
using GflTrainer.Runtime;

namespace GflTrainer.Training;

/// <summary>Entry point of <c>gfl train</c>: resolves the configuration, work directory, device and resume point,
/// prepares data and model, and runs the <see cref="Trainer"/>.</summary>
public static class TrainRun
{
    /// <summary>Exit code of a run stopped by <c>train.watchdog</c> (as <c>timeout(1)</c>): requeue after a look at the
    /// report.</summary>
    public const int HungExitCode = 124;

    /// <param name="console">the command's logger; the run adds train.log and events.jsonl in its work directory.</param>
    /// <param name="terminal">where a live progress bar is drawn (an interactive stderr), or null for plain log lines.</param>
    public static TrainResult Execute(TrainRequest request, ILogger console, TextWriter? terminal, CancellationToken cancel) =>
        Execute(request, console, terminal, cancel, hooks: null);

    /// <param name="hooks">test seams (null: none).</param>
    internal static TrainResult Execute(TrainRequest request, ILogger console, TextWriter? terminal, CancellationToken cancel,
        TrainTestHooks? hooks)
    {
        var cfg = request.Loaded ?? ConfigLoader.Load(request.ConfigPath, request.Overrides);
        var workDir = Path.GetFullPath(request.WorkDir ?? cfg.Runtime.WorkDir
            ?? Path.Combine("runs", Path.GetFileNameWithoutExtension(request.ConfigPath)));
        Directory.CreateDirectory(workDir);
        // Before anything is written there: a second run on this work dir stops here instead of interleaving files.
        using var workDirLock = WorkDirLock.Acquire(workDir, console);
        using var log = Logging.WithRunFiles(console, Path.Combine(workDir, "events.jsonl"), Path.Combine(workDir, "train.log"));
        log.Information("gfl train {Config} -> {WorkDir}", request.ConfigPath, workDir);

        var device = DeviceSelector.Resolve(request.Device is null or "auto" ? cfg.Runtime.Device : request.Device, log);
        DeterministicAlgorithms.Apply(cfg.Train.Deterministic, log);
        var store = new CheckpointStore(Path.Combine(workDir, "checkpoints"));
        foreach (var dir in store.RemoveUnfinishedSaves())
            log.Warning("removed {Dir}: an unfinished checkpoint write of a run that was killed", dir);
        using var resume = ResumePoint.Select(request, store, log);

        var yaml = ConfigWriter.ToYaml(cfg);
        var configPath = Path.Combine(workDir, "config.yaml");
        File.WriteAllText(configPath + ".tmp", yaml);
        File.Move(configPath + ".tmp", configPath, overwrite: true);

        long seed = resume?.Meta.Seed ?? cfg.Train.Seed ?? Random.Shared.Next(0, int.MaxValue);
        torch.manual_seed(seed);
        if (cfg.Train.Seed is null && resume is null) log.Information("train.seed not set: drew {Seed} (saved in checkpoints)", seed);

        DataPipelineFactory.SynthesizeIfRequested(cfg.Data, log);
        var train = DataPipelineFactory.LoadTrainSet(cfg.Data, log);
        DataRules.CheckClasses(cfg.Model, train.Categories, cfg.Data.Train.AnnFile);
        // One process until distributed training exists (issue 17): world size 1.
        var fingerprint = RunChanges.Fingerprint(train, worldSize: 1);
        var changes = resume is null ? [] : AcceptedChanges(request, resume, cfg, fingerprint, train.Categories, log);
        CocoDataset? val = null;
        CocoGroundTruth? valGt = null;
        if (File.Exists(cfg.Data.Val.AnnFile))
        {
            (val, valGt) = DataPipelineFactory.LoadEvalSet(cfg.Data.Val, cfg.Data, train.Categories, log);
        }
        else
            log.Warning("data.val.ann_file {File} not found: training without evaluation", cfg.Data.Val.AnnFile);

        using var model = DetectorFactory.CreateDetector(cfg.Model);
        if (cfg.Model.Backbone.Pretrained is { } pretrained && resume is null)
        {
            var report = WeightLoader.Load(model, pretrained, WeightNameMapping.TorchvisionBackbone, cfg.Model.Backbone.Strict,
                WeightLoader.TorchvisionClassifierPrefixes);
            log.Information("backbone weights from {Path}: {Report}", pretrained, WeightLoader.Describe(report));
        }
        if (device.type == DeviceType.CPU) CpuGradientGuard.Verify(model, log);
        // Move before the optimizer exists: Module.to() replaces Parameter objects (dotnet_peers.md B3).
        model.to(device);

        var parts = BuildParts(cfg, yaml, device, workDir, log, model, train, val, valGt, seed, resume,
            new RunRecord(fingerprint, changes), hooks?.AfterBackward);
        using var optimizer = parts.Optimizer;
        using var watchdog = cfg.Train.Watchdog is { } w
            ? new StepWatchdog(w.Factor, w.MinSeconds, () => DescribeLoading(parts.Loader, parts.Evaluation?.Loader),
                hang => StopHungRun(hang, parts.Checkpoints, log), log)
            : null;
        parts = parts with { Watchdog = watchdog, Memory = MemoryGuardFor(cfg, hooks?.Cgroup ?? CgroupMemory.Detect(), log) };
        var options = new TrainLoopOptions(cfg.Train.Epochs, cfg.Train.LogInterval, cfg.Data.BatchSize, device.ToString(),
            cfg.Train.Amp.ToString(), seed);
        var result = new Trainer(options, parts, log, terminal).Run(workDir, cancel);
        if (result.Interrupted) throw new OperationCanceledException("training interrupted; state saved to " + result.LastCheckpoint);
        log.Information("done: {Epochs} epochs, {Iters} iterations; last checkpoint {Ckpt}; best bbox AP {Best}",
            result.EpochsCompleted, result.Iterations, result.LastCheckpoint, result.BestAp?.ToString("F4") ?? "n/a");
        return result;
    }

    static MemoryGuard? MemoryGuardFor(GflConfig cfg, CgroupMemory? cgroup, ILogger log)
    {
        if (cgroup is null) { log.Debug("no cgroup memory limit found: train.memory_limit_fraction has nothing to watch"); return null; }
        if (cfg.Train.MemoryLimitFraction is not { } fraction) return null;
        log.Information("memory: cgroup limit {Limit} MB; the run saves last and stops above {Percent:F0} % of it",
            cgroup.LimitBytes >> 20, 100 * fraction);
        return new MemoryGuard(cgroup, fraction);
    }

    static string DescribeLoading(Data.DetectionLoader train, Data.DetectionLoader? val)
    {
        var inFlight = train.InFlight().Concat(val?.InFlight() ?? []).ToList();
        return inFlight.Count == 0 ? "the data loader has no image in progress"
            : "images still being read/decoded: " + string.Join(", ", inFlight.Select(f => $"{f.File} ({f.Elapsed.TotalSeconds:F0} s)"));
    }

    /// <summary>On the watchdog thread: report, save <c>last</c> when the loop hung waiting for data (the weights of that
    /// iteration are untouched; inside the step they may be mid-update, so the previous <c>last</c> stays), flush the
    /// logs and end the process: the hung thread cannot be unwound.</summary>
    static void StopHungRun(HangReport hang, CheckpointPolicy checkpoints, ILogger log)
    {
        log.Error("watchdog: {Details}", hang.Details);
        if (hang.Phase == "data")
        {
            try { log.Error("watchdog: saved {Path}; continue with --auto-resume", checkpoints.OnHang()); }
            catch (Exception e) { log.Error("watchdog: could not save last: {Message}", e.Message); }
        }
        else if (hang.BetweenIterations)
            log.Error("watchdog: the checkpoint written before this {Phase} stays the resume point (a resume does not redo " +
                "that evaluation: run gfl eval on it)", hang.Phase);
        else
            log.Error("watchdog: the hang is inside the training step: the previous checkpoint stays the resume point");
        log.Error("watchdog: stopping with exit code {Code}", HungExitCode);
        (log as IDisposable)?.Dispose();
        Environment.Exit(HungExitCode);
    }

    /// <summary>The differences between the checkpoint's run and this one: none, or accepted by --resume-changed (logged,
    /// and carried in every later checkpoint); otherwise the resume stops with the list (exit 2).</summary>
    private static IReadOnlyList<string> AcceptedChanges(TrainRequest request, LoadedCheckpoint resume, GflConfig cfg,
        RunFingerprint fingerprint, CategoryMap categories, ILogger log)
    {
        if (resume.Meta.Fingerprint is null)
            log.Warning("{Dir} predates run fingerprints: only the configuration and the classes are compared", resume.Directory);
        var diff = RunChanges.Between(resume.Meta, resume.Directory, cfg, fingerprint, categories);
        if (diff.Count > 0 && !request.ResumeChanged)
            throw new GflConfigException($"--resume: this run differs from the one {resume.Directory} recorded:\n  " +
                string.Join("\n  ", diff) + "\nundo the changes, or pass --resume-changed to continue anyway (the run is then " +
                "marked as changed: no longer exactly reproducible)") { Key = "--resume" };
        foreach (var d in diff) log.Warning("--resume-changed: continuing with {Change}", d);
        if (diff.Count > 0) log.Warning("this run is no longer exactly reproducible from its configuration (recorded in its checkpoints)");
        return resume.Meta.Changes.Concat(diff.Select(d => $"iteration {resume.Meta.Iteration}: {d}")).ToList();
    }

    /// <summary>The loop's parts for this configuration: optimizer (with linear lr scaling), schedule, loaders, the
    /// train step, checkpoints (restored from <paramref name="resume"/>), run log and periodic evaluation.</summary>
    private static TrainerParts BuildParts(GflConfig cfg, string yaml, torch.Device device, string workDir, ILogger log,
        GflDetector model, CocoDataset train, CocoDataset? val, CocoGroundTruth? valGt, long seed, LoadedCheckpoint? resume,
        RunRecord record,
        Action<IReadOnlyList<(string Name, torch.Tensor Param)>>? afterBackwardForTests)
    {
        var t = cfg.Train;
        double lr = t.Optimizer.Lr;
        if (t.AutoScaleLr.Enabled) lr *= (double)cfg.Data.BatchSize / t.AutoScaleLr.BaseBatchSize;
        var named = model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => (p.name, (torch.Tensor)p.parameter)).ToList();
        var sgd = new Sgd(named, lr, t.Optimizer.Momentum, t.Optimizer.WeightDecay, t.Optimizer.Nesterov);
        try
        {
            var loaderOptions = new LoaderOptions
            {
                BatchSize = cfg.Data.BatchSize, Workers = cfg.Data.Workers, Prefetch = cfg.Data.Prefetch, Seed = seed,
                MaxBadImages = cfg.Data.MaxBadImages, GroupByAspectRatio = cfg.Data.GroupByAspectRatio,
            };
            var trainLoader = DataPipelineFactory.CreateTrainLoader(cfg.Data, train, loaderOptions, device, log);
            int itersPerEpoch = trainLoader.BatchesPerEpoch;
            if (itersPerEpoch == 0)
                throw new GflConfigException($"data.train: no training batches ({train.Count} usable images, batch_size {cfg.Data.BatchSize})") { Key = "data.train" };
            var s = t.Schedule;
            var schedule = new LrSchedule(lr, s.Warmup == WarmupKind.None ? 0 : s.WarmupIters, s.WarmupRatio,
                s.Policy == Config.LrPolicy.Cosine ? LrDecay.Cosine : LrDecay.Step, s.Steps, s.Gamma, s.ByEpoch,
                (long)itersPerEpoch * t.Epochs, s.MinLr / lr, constantWarmup: s.Warmup == WarmupKind.Constant);
            var step = TrainStep.FromConfig(cfg, model, sgd, device, afterBackwardForTests: afterBackwardForTests);

            var state = new TrainState();
            var checkpoints = new CheckpointPolicy(new CheckpointStore(Path.Combine(workDir, "checkpoints")), t.Checkpoint, t.Epochs,
                state, model, sgd, step.Scaler, train.Categories, yaml, seed, record, log);
            var runLog = new RunLog(workDir, log);
            if (resume is not null)
            {
                checkpoints.Restore(resume);
                double bestLogged = runLog.ResumeAt(state.Iteration);
                if (!double.IsNaN(bestLogged)) state.OfferAp(bestLogged);
            }
            PeriodicEvaluation? evaluation = null;
            if (val is not null && valGt is not null)
            {
                var valLoader = DataPipelineFactory.CreateEvalLoader(cfg.Data, val, loaderOptions with { BatchSize = cfg.Data.ValBatchSize }, device, log);
                evaluation = new PeriodicEvaluation(t.EvalInterval, t.Epochs, valLoader, Inference.GflPostprocessor.FromConfig(cfg.Model),
                    train.Categories, valGt, workDir, runLog, log, classwise: cfg.Evaluation.Classwise);
            }
            return new TrainerParts(model, step, sgd, schedule, trainLoader, state, checkpoints, evaluation, runLog);
        }
        catch
        {
            sgd.Dispose();
            throw;
        }
    }
}

/// <summary>Test seams of <see cref="TrainRun"/>.</summary>
/// <param name="AfterBackward">passed to <see cref="OptimizerStep.AfterBackward"/>.</param>
/// <param name="Cgroup">the cgroup memory to watch instead of this process's.</param>
internal sealed record TrainTestHooks(Action<IReadOnlyList<(string Name, torch.Tensor Param)>>? AfterBackward = null,
    CgroupMemory? Cgroup = null);
