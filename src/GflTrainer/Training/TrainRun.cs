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
    /// <param name="console">the command's logger; the run adds train.log and events.jsonl in its work directory.</param>
    /// <param name="terminal">where a live progress bar is drawn (an interactive stderr), or null for plain log lines.</param>
    public static TrainResult Execute(TrainRequest request, ILogger console, TextWriter? terminal, CancellationToken cancel) =>
        Execute(request, console, terminal, cancel, null);

    /// <param name="afterBackwardForTests">test seam passed to <see cref="OptimizerStep.AfterBackward"/>.</param>
    internal static TrainResult Execute(TrainRequest request, ILogger console, TextWriter? terminal, CancellationToken cancel,
        Action<IReadOnlyList<(string Name, torch.Tensor Param)>>? afterBackwardForTests)
    {
        var cfg = ConfigLoader.Load(request.ConfigPath, request.Overrides);
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
        string? resumeFrom = null;
        if (request.Resume is not null)
        {
            resumeFrom = request.Resume.Length > 0 ? request.Resume
                : store.Find("last") ?? throw new GflConfigException($"--resume: no checkpoint 'last' in {store.Root}") { Key = "--resume" };
            if (!Directory.Exists(resumeFrom) && !File.Exists(resumeFrom))
                throw new GflConfigException($"--resume: checkpoint not found: {resumeFrom}") { Key = "--resume" };
        }
        else if (request.AutoResume)
        {
            resumeFrom = store.Find("last");
            log.Information(resumeFrom is null ? "--auto-resume: no checkpoint yet, starting fresh" : "--auto-resume: found {Path}", resumeFrom);
        }
        using var resume = resumeFrom is null ? null : CheckpointStore.Load(resumeFrom);

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
        if (resume is not null)
        {
            var saved = resume.Meta.Classes.Select(c => c.CategoryId).ToList();
            var now = train.Categories.Categories.Select(c => c.Id).ToList();
            if (!saved.SequenceEqual(now))
                throw new GflConfigException($"--resume: the checkpoint's categories ({string.Join(",", saved)}) differ from {cfg.Data.Train.AnnFile} ({string.Join(",", now)})") { Key = "--resume" };
        }
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

        var parts = BuildParts(cfg, yaml, device, workDir, log, model, train, val, valGt, seed, resume, afterBackwardForTests);
        using var optimizer = parts.Optimizer;
        var options = new TrainLoopOptions(cfg.Train.Epochs, cfg.Train.LogInterval, cfg.Data.BatchSize, device.ToString(),
            cfg.Train.Amp.ToString(), seed);
        var result = new Trainer(options, parts, log, terminal).Run(workDir, cancel);
        if (result.Interrupted) throw new OperationCanceledException("training interrupted; state saved to " + result.LastCheckpoint);
        log.Information("done: {Epochs} epochs, {Iters} iterations; last checkpoint {Ckpt}; best bbox AP {Best}",
            result.EpochsCompleted, result.Iterations, result.LastCheckpoint, result.BestAp?.ToString("F4") ?? "n/a");
        return result;
    }

    /// <summary>The loop's parts for this configuration: optimizer (with linear lr scaling), schedule, loaders, the
    /// train step, checkpoints (restored from <paramref name="resume"/>), run log and periodic evaluation.</summary>
    private static TrainerParts BuildParts(GflConfig cfg, string yaml, torch.Device device, string workDir, ILogger log,
        GflDetector model, CocoDataset train, CocoDataset? val, CocoGroundTruth? valGt, long seed, LoadedCheckpoint? resume,
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
                state, model, sgd, step.Scaler, train.Categories, yaml, seed, log);
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
