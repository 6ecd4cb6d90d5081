using GflTrainer.Checkpoints;
using GflTrainer.Config;
using GflTrainer.Data;
using GflTrainer.Model;
using Serilog;
using TorchSharp;
using GflTrainer.Coco;
using GflTrainer.Runtime;

namespace GflTrainer.Inference;

/// <summary>What <c>gfl eval --checkpoint</c> asks for.</summary>
/// <param name="Split">val (default), test or train: which data section's ann_file/img_prefix to use.</param>
/// <param name="OutDir">where detections.json and metrics.json go (default: beside the checkpoint, eval_SPLIT).</param>
public sealed record EvalRequest(string Checkpoint, string? ConfigPath, IReadOnlyList<string> Overrides, string Split = "val",
    string? OutDir = null, string? Device = null);

/// <summary>Runs a trained detector over a split and evaluates it: the model path of <c>gfl eval</c>.</summary>
public static class EvalRun
{
    public static CocoMetrics Execute(EvalRequest request, ILogger log, CancellationToken cancel = default)
    {
        SplitConfig Pick(GflConfig c) => request.Split.ToLowerInvariant() switch
        {
            "val" => c.Data.Val,
            "test" => c.Data.Test,
            "train" => c.Data.Train,
            var s => throw new GflConfigException($"--split {s}: expected val, test or train") { Key = "--split" },
        };
        var device = DeviceSelector.Resolve(request.Device, log);
        using var detector = TrainedDetector.Load(request.Checkpoint, request.ConfigPath, request.Overrides, device,
            c => Pick(c).AnnFile);
        var cfg = detector.Config;
        var split = Pick(cfg);
        var (dataset, gt) = DataPipelineFactory.LoadEvalSet(split, cfg.Data, detector.Categories, log);
        var loader = DataPipelineFactory.CreateEvalLoader(cfg.Data, dataset,
            new LoaderOptions { BatchSize = cfg.Data.ValBatchSize, Workers = cfg.Data.Workers, Prefetch = cfg.Data.Prefetch }, device, log);
        var post = GflPostprocessor.FromConfig(cfg.Model);
        var outDir = request.OutDir ?? Path.Combine(
            File.Exists(request.Checkpoint) ? Path.GetDirectoryName(Path.GetFullPath(request.Checkpoint))! : request.Checkpoint,
            $"eval_{request.Split}");
        int lastPct = -1;
        var result = DetectionEvaluation.Run(detector.Model, loader, post, detector.Categories, gt, outDir, "model detections",
            (done, total) =>
            {
                int pct = 100 * done / Math.Max(1, total);
                if (pct / 10 != lastPct / 10) { lastPct = pct; log.Information("inference {Done}/{Total} batches", done, total); }
            }, cancel);
        log.Information("inference: {Images} images, {Dets} detections in {Sec:F1} s ({Ips:F1} images/s)",
            dataset.Count, result.Detections, result.Seconds, dataset.Count / result.Seconds);
        log.Information("wrote {Dir}/detections.json and metrics.json", outDir);
        return result.Metrics;
    }
}
