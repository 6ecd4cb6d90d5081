using GflTrainer.Checkpoints;
using GflTrainer.Config;
using GflTrainer.Data;
using GflTrainer.Evaluation;
using GflTrainer.Model;
using Serilog;
using TorchSharp;

namespace GflTrainer.Training;

/// <summary>Entry point of <c>gfl train</c>: resolves the configuration, work directory, device and resume point,
/// prepares data and model, and runs the <see cref="Trainer"/>.</summary>
public static class TrainRun
{
    public static TrainResult Execute(TrainRequest request, CancellationToken cancel) => Execute(request, cancel, null);

    /// <param name="afterBackwardForTests">test seam passed to <see cref="OptimizerStep.AfterBackward"/>.</param>
    internal static TrainResult Execute(TrainRequest request, CancellationToken cancel,
        Action<IReadOnlyList<(string Name, torch.Tensor Param)>>? afterBackwardForTests)
    {
        var cfg = ConfigLoader.Load(request.ConfigPath, request.Overrides);
        var workDir = Path.GetFullPath(request.WorkDir ?? cfg.Runtime.WorkDir
            ?? Path.Combine("runs", Path.GetFileNameWithoutExtension(request.ConfigPath)));
        Directory.CreateDirectory(workDir);
        using var runLog = Logging.AttachRunLog(Path.Combine(workDir, "events.jsonl"), Path.Combine(workDir, "train.log"));
        var log = Log.Logger;
        log.Information("gfl train {Config} -> {WorkDir}", request.ConfigPath, workDir);

        var device = DeviceSelector.Resolve(request.Device is null or "auto" ? cfg.Runtime.Device : request.Device);
        var store = new CheckpointStore(Path.Combine(workDir, "checkpoints"));
        string? resumeFrom = null;
        if (request.Resume is not null)
        {
            resumeFrom = request.Resume.Length > 0 ? request.Resume
                : store.Find("last") ?? throw new GflConfigException($"--resume: no checkpoint 'last' in {store.Root}");
            if (!Directory.Exists(resumeFrom) && !File.Exists(resumeFrom))
                throw new GflConfigException($"--resume: checkpoint not found: {resumeFrom}");
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
        if (train.Categories.Categories.Count != cfg.Model.Head.NumClasses)
            throw new GflConfigException($"model.head.num_classes is {cfg.Model.Head.NumClasses} but {cfg.Data.Train.AnnFile} has " +
                $"{train.Categories.Categories.Count} categories ({string.Join(", ", train.Categories.Categories.Select(c => c.Name))})");
        if (resume is not null)
        {
            var saved = resume.Meta.Classes.Select(c => c.CategoryId).ToList();
            var now = train.Categories.Categories.Select(c => c.Id).ToList();
            if (!saved.SequenceEqual(now))
                throw new GflConfigException($"--resume: the checkpoint's categories ({string.Join(",", saved)}) differ from {cfg.Data.Train.AnnFile} ({string.Join(",", now)})");
        }
        CocoDataset? val = null;
        CocoGroundTruth? valGt = null;
        if (File.Exists(cfg.Data.Val.AnnFile))
        {
            val = DataPipelineFactory.LoadEvalSet(cfg.Data.Val, cfg.Data, train.Categories, log);
            valGt = CocoGroundTruth.Load(cfg.Data.Val.AnnFile);
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

        using var trainer = new Trainer(cfg, yaml, device, workDir, log, model, train, val, valGt, seed, resume, afterBackwardForTests);
        var result = trainer.Run(cancel);
        if (result.Interrupted) throw new OperationCanceledException("training interrupted; state saved to " + result.LastCheckpoint);
        log.Information("done: {Epochs} epochs, {Iters} iterations; last checkpoint {Ckpt}; best bbox AP {Best}",
            result.EpochsCompleted, result.Iterations, result.LastCheckpoint, result.BestAp?.ToString("F4") ?? "n/a");
        return result;
    }
}
