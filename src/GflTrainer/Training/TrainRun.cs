using GflTrainer.Data.Statistics;
using GflTrainer.Checkpoints;
using GflTrainer.Config;
using GflTrainer.Data;
using GflTrainer.Model;
using Serilog;
using TorchSharp;
using GflTrainer.Coco;
using GflTrainer.Runtime;
using GflTrainer.Runtime.Distributed;

using GflTrainer.Training.Losses;

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
        var workDir = Path.GetFullPath(request.WorkDir ?? cfg.Runtime.WorkDirFor(request.ConfigPath));
        // One process per device under torchrun/mpirun/srun; rank 0 alone writes the work dir (lock, logs, checkpoints).
        var device = DeviceSelector.Resolve(request.Device is null or "auto" ? cfg.Runtime.Device : request.Device, console);
        using var ranks = DataParallel.Create(cfg.Train.Dist.Backend, LaunchEnvironment.Detect(), device, console);
        device = ranks.Device;
        if (ranks.IsMain) Directory.CreateDirectory(workDir);
        // Before anything is written there: a second run on this work dir stops here instead of interleaving files.
        using var workDirLock = ranks.IsMain ? WorkDirLock.Acquire(workDir, console) : null;
        using var log = ranks.IsMain
            ? Logging.WithRunFiles(console, Path.Combine(workDir, "events.jsonl"), Path.Combine(workDir, "train.log"))
            : Logging.ForOtherRank(console);
        log.Information("gfl train {Config} -> {WorkDir}", request.ConfigPath, workDir);

        DeterministicAlgorithms.Apply(cfg.Train.Deterministic, log);
        CuDnnBenchmark.Apply(cfg.Runtime.CudnnBenchmark, cfg.Train.Deterministic, log);
        var store = new CheckpointStore(Path.Combine(workDir, "checkpoints"));
        if (ranks.IsMain)
            foreach (var dir in store.RemoveUnfinishedSaves())
                log.Warning("removed {Dir}: an unfinished checkpoint write of a run that was killed", dir);
        ranks.Collective.Barrier();
        using var resume = ResumePoint.Select(request, store, log);
        var yaml = ConfigWriter.ToYaml(cfg);
        if (ranks.IsMain)
        {
            var configPath = Path.Combine(workDir, "config.yaml");
            File.WriteAllText(configPath + ".tmp", yaml);
            File.Move(configPath + ".tmp", configPath, overwrite: true);
        }

        // Every rank builds the same model from the same seed (rank 0's draw when none is set).
        long seed = resume?.Meta.Seed ?? cfg.Train.Seed ?? Random.Shared.Next(0, int.MaxValue);
        seed = BitConverter.ToInt64(ranks.Collective.AllGather(BitConverter.GetBytes(seed))[0]);
        torch.manual_seed(seed);
        if (cfg.Train.Seed is null && resume is null) log.Information("train.seed not set: drew {Seed} (saved in checkpoints)", seed);

        DataPipelineFactory.SynthesizeIfRequested(cfg.Data, log);
        var train = DataPipelineFactory.LoadTrainSet(cfg.Data, log);
        DataRules.CheckClasses(cfg.Model, train.Categories, cfg.Data.Train.AnnFile);
        var fingerprint = RunChanges.Fingerprint(train, ranks.WorldSize);
        SameRunOnEveryRank(ranks.Collective, yaml, fingerprint, resume);
        var changes = resume is null ? [] : AcceptedChanges(request, resume, cfg, fingerprint, train.Categories, log);
        CocoDataset? val = null;
        CocoGroundTruth? valGt = null;
        if (File.Exists(cfg.Data.Val.AnnFile))
        {
            (val, valGt) = DataPipelineFactory.LoadEvalSet(cfg.Data.Val, cfg.Data, train.Categories, log);
        }
        else
            log.Warning("data.val.ann_file {File} not found: training without evaluation", cfg.Data.Val.AnnFile);

        if (ranks.IsMain)
        {
            Summary(request, cfg, workDir, seed, device, fingerprint, train, val).Write(workDir);
            WriteDataStatistics(cfg, workDir, train.Count + (val?.Count ?? 0), fresh: resume is null, log);
        }

        using var model = DetectorFactory.CreateDetector(cfg.Model);
        if (cfg.Model.Backbone.Pretrained is { } pretrained && resume is null)
        {
            var report = WeightLoader.Load(model, pretrained, WeightNameMapping.TorchvisionBackbone, cfg.Model.Backbone.Strict,
                WeightLoader.TorchvisionClassifierPrefixes);
            log.Information("backbone weights from {Path}: {Report}", pretrained, WeightLoader.Describe(report));
        }
        if (device.type == DeviceType.CPU) CpuGradientGuard.Verify(model, log, cfg.Runtime.ChannelsLast);
        // Move before the optimizer exists: Module.to() replaces Parameter objects (dotnet_peers.md B3).
        model.to(device);
        if (cfg.Runtime.ChannelsLast) ChannelsLast.Apply(model);   // also before the optimizer: it keeps the format

        var parts = BuildParts(cfg, yaml, device, ranks.Collective, workDir, log, model, train, val, valGt, seed, resume,
            new RunRecord(fingerprint, changes), hooks?.AfterBackward);
        using var optimizer = parts.Optimizer;
        using var watchdog = cfg.Train.Watchdog is { } w
            ? new StepWatchdog(w.Factor, w.MinSeconds, () => DescribeLoading(parts.Loader, parts.Evaluation?.Loader),
                hang => StopHungRun(hang, parts.Checkpoints, log), log)
            : null;
        parts = parts with { Watchdog = watchdog, Memory = MemoryGuardFor(cfg, hooks?.Cgroup ?? CgroupMemory.Detect(), log) };
        var options = new TrainLoopOptions(cfg.Train.Epochs, cfg.Train.LogInterval, cfg.Data.BatchSize, device.ToString(),
            cfg.Train.Amp.ToString(), seed, cfg.Runtime.DefersLossReads(device.type == DeviceType.CUDA));
        var result = new Trainer(options, parts, log, ranks.IsMain ? terminal : null).Run(workDir, cancel);
        ranks.Complete();
        if (result.Interrupted) throw new OperationCanceledException("training interrupted; state saved to " + result.LastCheckpoint);
        log.Information("done: {Epochs} epochs, {Iters} iterations; last checkpoint {Ckpt}; best bbox AP {Best}",
            result.EpochsCompleted, result.Iterations, result.LastCheckpoint, result.BestAp?.ToString("F4") ?? "n/a");
        return result;
    }

    /// <summary>The numbers of <c>gfl data stats</c> for the report (box sizes after the resize, anchor coverage), for
    /// this run's config: about 2 ms per image, so a COCO-size set is left to the command (whose default output is this
    /// folder). A resumed run keeps what its start wrote. A failure is a warning.</summary>
    static void WriteDataStatistics(GflConfig cfg, string workDir, int images, bool fresh, Serilog.ILogger log)
    {
        const int MaxImages = 20_000;
        var dir = Path.Combine(workDir, Reporting.RunReport.DataStatsDir);
        bool present = File.Exists(Path.Combine(dir, "stats.json"));
        if (!cfg.Evaluation.DataStats || (present && !fresh)) return;
        if (images > MaxImages)
        {
            if (present) return;   // written by gfl data stats for this run
            log.Information("data statistics not computed for {Images} images (> {Max}): gfl data stats --config CONFIG --out {Dir} " +
                "adds them to the report", images, MaxImages, dir);
            return;
        }
        try
        {
            var splits = new List<(string, SplitConfig)> { ("train", cfg.Data.Train) };
            if (File.Exists(cfg.Data.Val.AnnFile)) splits.Add(("val", cfg.Data.Val));
            var stats = DatasetStatistics.Compute(cfg, splits);
            Reporting.DatasetStatisticsReport.Save(stats, dir);
            foreach (var s in stats.Splits)
                log.Information("{Split}: {Without} of {Gts} ground truths get no positive anchor ({Assigner}; gfl data stats for details)",
                    s.Split, s.Coverage.WithoutPositive, s.Coverage.Gts, s.Coverage.Assigner);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            log.Warning("data statistics not written: {Message}", e.Message);
        }
    }

    /// <summary>run.json for the report: the command as given, one that retrains the same run from the saved resolved config
    /// (with the seed actually used, which a config without train.seed does not hold), and the data as read.</summary>
    static Reporting.RunSummary Summary(TrainRequest request, GflConfig cfg, string workDir, long seed, torch.Device device,
        RunFingerprint fingerprint, CocoDataset train, CocoDataset? val)
    {
        var q = Reporting.RunSummary.Quote;
        var command = new List<string> { "gfl", "train", "--config", q(request.ConfigPath) };
        foreach (var o in request.Overrides) { command.Add("--set"); command.Add(q(o)); }
        if (request.WorkDir is not null) { command.Add("--work-dir"); command.Add(q(request.WorkDir)); }
        if (request.Device is not null) { command.Add("--device"); command.Add(q(request.Device)); }
        var reproduce = $"gfl train --config {q(Path.Combine(workDir, "config.yaml"))} --set train.seed={seed} --work-dir {q(workDir + "_again")}";
        var splits = new List<Reporting.RunSplitSummary> { Reporting.RunSummary.Describe("train", cfg.Data.Train.AnnFile, cfg.Data.Train.ImgPrefix, train) };
        if (val is not null) splits.Add(Reporting.RunSummary.Describe("val", cfg.Data.Val.AnnFile, cfg.Data.Val.ImgPrefix, val));
        return new Reporting.RunSummary(string.Join(" ", command), reproduce, seed, device.ToString(), fingerprint.WorldSize,
            fingerprint.GflVersion, splits);
    }

    /// <summary>Every rank must train the same run: the same resolved config, training set and resume point (a config
    /// edited between the launches of two nodes, or a checkpoint one node's file system does not see yet, would
    /// otherwise train silently apart). All ranks compare with rank 0 and stop together on a difference.</summary>
    static void SameRunOnEveryRank(ICollective ranks, string yaml, RunFingerprint fingerprint, LoadedCheckpoint? resume)
    {
        if (ranks.WorldSize == 1) return;
        string Describe(string what, string value) => $"{what} {value}";
        var mine = new[]
        {
            Describe("config sha256", Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(yaml)))[..16]),
            Describe("training annotations sha256", fingerprint.TrainAnnSha256[..16]),
            Describe("resume point", resume is null ? "none" : $"{Path.GetFileName(resume.Directory)} at iteration {resume.Meta.Iteration}"),
        };
        var all = ranks.AllGather(System.Text.Encoding.UTF8.GetBytes(string.Join("\n", mine)))
            .Select(b => System.Text.Encoding.UTF8.GetString(b).Split('\n')).ToArray();
        for (int r = 1; r < all.Length; r++)
            for (int i = 0; i < mine.Length; i++)
                if (all[r][i] != all[0][i])
                    throw new GflConfigException($"data parallel: rank {r} differs from rank 0: {all[r][i]} vs {all[0][i]}; every rank " +
                        "must see the same config, data and checkpoints (a shared file system)") { Key = "train.dist" };
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
    private static TrainerParts BuildParts(GflConfig cfg, string yaml, torch.Device device, ICollective ranks, string workDir, ILogger log,
        GflDetector model, CocoDataset train, CocoDataset? val, CocoGroundTruth? valGt, long seed, LoadedCheckpoint? resume,
        RunRecord record,
        Action<IReadOnlyList<(string Name, torch.Tensor Param)>>? afterBackwardForTests)
    {
        var t = cfg.Train;
        double lr = t.Optimizer.Lr;
        // mmdetection's auto_scale_lr: the global batch (all ranks) against the batch the lr was tuned for.
        int globalBatch = ranks.WorldSize * cfg.Data.BatchSize;
        if (t.AutoScaleLr.Enabled)
        {
            lr *= (double)globalBatch / t.AutoScaleLr.BaseBatchSize;
            log.Information("train.auto_scale_lr: lr {Lr} = {Base} x global batch {Global} / {BaseBatch}", lr, t.Optimizer.Lr, globalBatch, t.AutoScaleLr.BaseBatchSize);
        }
        else if (ranks.WorldSize > 1)
            log.Information("global batch {Global} ({World} ranks x {Batch}); lr {Lr} as configured (train.auto_scale_lr off)",
                globalBatch, ranks.WorldSize, cfg.Data.BatchSize, lr);
        var named = model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => (p.name, (torch.Tensor)p.parameter)).ToList();
        var sgd = new Sgd(named, lr, t.Optimizer.Momentum, t.Optimizer.WeightDecay, t.Optimizer.Nesterov);
        try
        {
            var loaderOptions = new LoaderOptions
            {
                BatchSize = cfg.Data.BatchSize, Workers = cfg.Data.Workers, Prefetch = cfg.Data.Prefetch, Seed = seed,
                MaxBadImages = cfg.Data.MaxBadImages, GroupByAspectRatio = cfg.Data.GroupByAspectRatio,
                Rank = ranks.Rank, WorldSize = ranks.WorldSize,
            };
            var step = TrainStep.FromConfig(cfg, model, sgd, device, ranks, afterBackwardForTests);
            bool targetsInLoader = cfg.Runtime.TargetsInLoader(device.type == DeviceType.CUDA, step.Loss.TargetBuilder.Anchors.AnchorsPerLocation);
            log.Debug("runtime.targets {Mode}: training targets built {Where}", cfg.Runtime.Targets.ToString().ToLowerInvariant(),
                targetsInLoader ? "by the loader's workers ahead of each step" : "inside each step");
            var trainLoader = DataPipelineFactory.CreateTrainLoader(cfg.Data, train, loaderOptions, device, log,
                targetsInLoader ? new HostTargets(step.Loss.TargetBuilder) : null);
            int itersPerEpoch = trainLoader.BatchesPerEpoch;
            if (itersPerEpoch == 0)
                throw new GflConfigException($"data.train: no training batches ({train.Count} usable images, batch_size {cfg.Data.BatchSize})") { Key = "data.train" };
            var s = t.Schedule;
            var schedule = new LrSchedule(lr, s.Warmup == WarmupKind.None ? 0 : s.WarmupIters, s.WarmupRatio,
                s.Policy == Config.LrPolicy.Cosine ? LrDecay.Cosine : LrDecay.Step, s.Steps, s.Gamma, s.ByEpoch,
                (long)itersPerEpoch * t.Epochs, s.MinLr / lr, constantWarmup: s.Warmup == WarmupKind.Constant);
            // DDP starts every rank from rank 0's weights (the same seed gives the same ones; this makes sure).
            ranks.Broadcast(model.parameters().Select(p => (torch.Tensor)p).Concat(model.buffers()).ToList());

            var state = new TrainState();
            var checkpoints = new CheckpointPolicy(new CheckpointStore(Path.Combine(workDir, "checkpoints")), t.Checkpoint, t.Epochs,
                state, model, sgd, step.Scaler, train.Categories, yaml, seed, record, log, writes: ranks.Rank == 0);
            var runLog = ranks.Rank == 0 ? new RunLog(workDir, log) : RunLog.Disabled(workDir, log);
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
                    train.Categories, valGt, workDir, runLog, log, classwise: cfg.Evaluation.Classwise, ranks,
                    Reporting.EvaluationPlotOptions.FromConfig(cfg.Evaluation));
            }
            return new TrainerParts(model, step, sgd, schedule, trainLoader, state, checkpoints, evaluation, runLog, Ranks: ranks);
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
