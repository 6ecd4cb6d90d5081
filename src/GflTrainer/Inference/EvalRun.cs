using GflTrainer.Checkpoints;
using GflTrainer.Config;
using GflTrainer.Data;
using GflTrainer.Model;
using Serilog;
using TorchSharp;
using GflTrainer.Coco;
using GflTrainer.Runtime;
using GflTrainer.Reporting;

namespace GflTrainer.Inference;

/// <summary>What <c>gfl eval --checkpoint</c> asks for.</summary>
/// <param name="Split">val (default), test or train: which data section's ann_file/img_prefix to use.</param>
/// <param name="OutDir">where detections.json and metrics.json go (default: beside the checkpoint, eval_SPLIT).</param>
/// <param name="Onnx">a model written by <c>gfl export</c>, evaluated in ONNX Runtime instead of <paramref name="Checkpoint"/>:
/// its pre- and post-processing come from the model's metadata; the images and ground truth from the config's split,
/// or from <paramref name="Annotations"/> and <paramref name="Images"/> when no config is given.</param>
public sealed record EvalRequest(string Checkpoint, string? ConfigPath, IReadOnlyList<string> Overrides, string Split = "val",
    string? OutDir = null, string? Device = null, string? Onnx = null, string? Annotations = null, string? Images = null);

/// <summary>Runs a trained detector over a split and evaluates it: the model path of <c>gfl eval</c>.</summary>
public static class EvalRun
{
    public static CocoMetrics Execute(EvalRequest request, ILogger log, CancellationToken cancel = default)
    {
        if (request.Onnx is not null) return ExecuteOnnx(request, log, cancel);
        var device = DeviceSelector.Resolve(request.Device, log);
        using var detector = TrainedDetector.Load(request.Checkpoint, request.ConfigPath, request.Overrides, device,
            c => Pick(c, request.Split).AnnFile);
        var cfg = detector.Config;
        var outDir = request.OutDir ?? Path.Combine(
            File.Exists(request.Checkpoint) ? Path.GetDirectoryName(Path.GetFullPath(request.Checkpoint))! : request.Checkpoint,
            $"eval_{request.Split}");
        var post = GflPostprocessor.FromConfig(cfg.Model);   // the model is in eval mode (TrainedDetector.Load)
        return Evaluate(cfg.Data, Pick(cfg, request.Split), detector.Categories, device, outDir, "model detections",
            EvaluationPlotOptions.FromConfig(cfg.Evaluation), log,
            b => post.Predict(detector.Model.forward(b.Images), b.Metas), cancel);
    }

    /// <summary>The exported model in ONNX Runtime (CPU) over the same images: the deployment artefact's AP, to be
    /// compared with the checkpoint's (docs/export.md).</summary>
    static CocoMetrics ExecuteOnnx(EvalRequest request, ILogger log, CancellationToken cancel)
    {
        using var onnx = OnnxDetector.Load(request.Onnx!);
        DataConfig data;
        SplitConfig split;
        var evaluation = new EvaluationConfig();
        if (request.ConfigPath is not null)
        {
            if (request.Annotations is not null || request.Images is not null)
                throw new GflConfigException("gfl eval --onnx: give either --config (its data split) or --annotations and --images") { Key = "--annotations" };
            var cfg = ConfigLoader.Load(request.ConfigPath, request.Overrides);
            split = Pick(cfg, request.Split);
            data = cfg.Data;
            evaluation = cfg.Evaluation;
        }
        else
        {
            if (request.Annotations is null || request.Images is null)
                throw new GflConfigException("gfl eval --onnx needs --config FILE (and --split), or --annotations GT.json and --images DIR") { Key = "--annotations" };
            split = new SplitConfig { AnnFile = request.Annotations, ImgPrefix = request.Images };
            data = new DataConfig();
        }
        // What the model was trained with, from its metadata, whatever the config says.
        data = data with { ImgScale = onnx.Data.ImgScale, Mean = onnx.Data.Mean, Std = onnx.Data.Std, ToRgb = onnx.Data.ToRgb,
            PadDivisor = onnx.Data.PadDivisor };
        var outDir = request.OutDir ?? Path.Combine(Path.GetDirectoryName(Path.GetFullPath(request.Onnx!))!,
            $"{Path.GetFileNameWithoutExtension(request.Onnx)}_eval_{request.Split}");
        return Evaluate(data, split, onnx.Categories, torch.CPU, outDir, "ONNX detections", EvaluationPlotOptions.FromConfig(evaluation),
            log, onnx.Predict, cancel);
    }

    /// <summary>File mode of <c>gfl eval</c>: a results file against a ground-truth file (the usual pycocotools script).
    /// <paramref name="outPath"/> receives metrics.json; the evaluation plots go into its folder unless
    /// <paramref name="plots"/> is null, with the mosaic when <paramref name="images"/> (the annotations' image root) is
    /// given.</summary>
    public static CocoMetrics ExecuteFiles(string annotationsPath, string detectionsPath, string? outPath, string? images,
        EvaluationPlotOptions? plots, ILogger log)
    {
        var annotations = CocoAnnotations.Load(annotationsPath);
        var gt = CocoGroundTruth.FromAnnotations(annotations);
        var dets = CocoDetections.Load(detectionsPath, gt);
        var (accumulation, metrics) = new CocoEvaluator(gt).EvaluateWithCurves(dets);
        if (outPath is null) return metrics;
        var dir = Path.GetDirectoryName(Path.GetFullPath(outPath))!;
        try
        {
            Directory.CreateDirectory(dir);
            File.WriteAllText(outPath + ".tmp", metrics.ToJson());
            File.Move(outPath + ".tmp", outPath, overwrite: true);
            log.Information("metrics written to {Path}", outPath);
            if (plots is null) return metrics;
            if (images is not null && !Directory.Exists(images))
                throw new GflConfigException($"--images {images}: folder not found") { Key = "--images" };
            var files = annotations.Images.GroupBy(i => i.Id).ToDictionary(g => g.Key, g => g.First().FileName);
            var written = EvaluationPlots.Write(dir, gt, dets.Items, accumulation, plots,
                images is null ? null : id => files.TryGetValue(id, out var f) ? Path.Combine(images, f) : null);
            log.Information("evaluation plots written to {Dir} ({Count} files)", dir, written.Count);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new GflRuntimeException($"{dir}: cannot write the evaluation results: {e.Message}", e);
        }
        return metrics;
    }

    static SplitConfig Pick(GflConfig c, string split) => split.ToLowerInvariant() switch
    {
        "val" => c.Data.Val,
        "test" => c.Data.Test,
        "train" => c.Data.Train,
        var s => throw new GflConfigException($"--split {s}: expected val, test or train") { Key = "--split" },
    };

    /// <param name="what">names the detections in messages (e.g. a detection on an unknown image) and in the log.</param>
    static CocoMetrics Evaluate(DataConfig data, SplitConfig split, CategoryMap categories, torch.Device device, string outDir,
        string what, EvaluationPlotOptions? plots, ILogger log, Func<DetectionBatch, IReadOnlyList<Detections>> detect, CancellationToken cancel)
    {
        var (dataset, gt) = DataPipelineFactory.LoadEvalSet(split, data, categories, log);
        var loader = DataPipelineFactory.CreateEvalLoader(data, dataset,
            new LoaderOptions { BatchSize = data.ValBatchSize, Workers = data.Workers, Prefetch = data.Prefetch }, device, log);
        int lastPct = -1;
        var result = DetectionEvaluation.Run(detect, loader, categories, gt, outDir, what, plots, (done, total) =>
        {
            int pct = 100 * done / Math.Max(1, total);
            if (pct / 10 != lastPct / 10) { lastPct = pct; log.Information("inference {Done}/{Total} batches", done, total); }
        }, cancel);
        log.Information("inference ({What}): {Images} images, {Dets} detections in {Sec:F1} s ({Ips:F1} images/s)",
            what, dataset.Count, result.Detections, result.Seconds, dataset.Count / result.Seconds);
        log.Information(plots is null ? "wrote {Dir}/detections.json and metrics.json" : "wrote {Dir}/detections.json, metrics.json and the evaluation plots", outDir);
        return result.Metrics;
    }
}
