using GflTrainer.Coco;
using GflTrainer.Data;
using GflTrainer.Model;
using GflTrainer.Reporting;

namespace GflTrainer.Inference;

/// <summary>What one evaluation produced.</summary>
/// <param name="Detections">detections written to <c>detections.json</c>.</param>
/// <param name="Seconds">wall time of inference (the COCO metric not included).</param>
public sealed record DetectionEvaluationResult(CocoMetrics Metrics, int Detections, double Seconds);

/// <summary>Evaluate and write results: runs the detector over a split, writes <c>detections.json</c> (a COCO results
/// file pycocotools can read) and <c>metrics.json</c> into one folder, and returns the metrics. <c>gfl eval</c> and
/// the periodic evaluation of <c>gfl train</c> both call this.</summary>
internal static class DetectionEvaluation
{
    /// <param name="source">names the detections in messages about them (e.g. a detection on an unknown image).</param>
    public static DetectionEvaluationResult Run(GflDetector model, DetectionLoader loader, GflPostprocessor postprocessor,
        CategoryMap categories, CocoGroundTruth groundTruth, string outDir, string source, EvaluationPlotOptions? plots,
        Action<int, int>? progress = null, CancellationToken cancel = default)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var dets = DetectionInference.Run(model, loader, postprocessor, categories, progress, cancel);
        return Evaluate(dets, clock.Elapsed.TotalSeconds, groundTruth, outDir, source, plots, loader.Dataset);
    }

    /// <summary>The same for any detector (an exported model in ONNX Runtime): see <see cref="DetectionInference.Run(Func{DetectionBatch, IReadOnlyList{Detections}}, DetectionLoader, CategoryMap, Action{int, int}?, CancellationToken)"/>.</summary>
    public static DetectionEvaluationResult Run(Func<DetectionBatch, IReadOnlyList<Detections>> detect, DetectionLoader loader,
        CategoryMap categories, CocoGroundTruth groundTruth, string outDir, string source, EvaluationPlotOptions? plots,
        Action<int, int>? progress = null, CancellationToken cancel = default)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var dets = DetectionInference.Run(detect, loader, categories, progress, cancel);
        return Evaluate(dets, clock.Elapsed.TotalSeconds, groundTruth, outDir, source, plots, loader.Dataset);
    }

    /// <summary>Data-parallel evaluation: each rank runs its shard of the split (the loader's contiguous block of images,
    /// <see cref="GroupBatchSampler.EvalBatches"/>), the detections are gathered in rank order, which is the split's
    /// image order, so rank 0 evaluates exactly the list one process would have produced (COCOeval breaks score ties
    /// by list order). Rank 0 writes and returns the result; the other ranks return null.</summary>
    public static DetectionEvaluationResult? RunSharded(Runtime.ICollective ranks, GflDetector model, DetectionLoader loader,
        GflPostprocessor postprocessor, CategoryMap categories, CocoGroundTruth groundTruth, string outDir, string source,
        EvaluationPlotOptions? plots, Action<int, int>? progress = null, CancellationToken cancel = default)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var mine = DetectionInference.Run(model, loader, postprocessor, categories, progress, cancel);
        var all = ranks.AllGather(System.Runtime.InteropServices.MemoryMarshal.AsBytes(
            System.Runtime.InteropServices.CollectionsMarshal.AsSpan(mine)).ToArray());
        if (ranks.Rank != 0) return null;
        var dets = all.SelectMany(bytes => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, CocoDetection>(bytes).ToArray()).ToList();
        return Evaluate(dets, clock.Elapsed.TotalSeconds, groundTruth, outDir, source, plots, loader.Dataset);
    }

    /// <param name="plots">null: metrics only; otherwise <see cref="EvaluationPlots"/> are written beside them.</param>
    static DetectionEvaluationResult Evaluate(List<CocoDetection> dets, double seconds, CocoGroundTruth groundTruth, string outDir,
        string source, EvaluationPlotOptions? plots, IDetectionDataset dataset)
    {
        Directory.CreateDirectory(outDir);
        DetectionInference.WriteResults(Path.Combine(outDir, "detections.json"), dets);
        var (accumulation, metrics) = new CocoEvaluator(groundTruth).EvaluateWithCurves(CocoDetections.Create(groundTruth, dets, source));
        var path = Path.Combine(outDir, "metrics.json");
        File.WriteAllText(path + ".tmp", metrics.ToJson());
        File.Move(path + ".tmp", path, overwrite: true);
        if (plots is not null)
        {
            var entries = dataset.Entries.ToDictionary(e => e.ImageId);
            EvaluationPlots.Write(outDir, groundTruth, dets, accumulation, plots,
                id => entries.TryGetValue(id, out var e) ? dataset.PathOf(e) : null);
        }
        return new DetectionEvaluationResult(metrics, dets.Count, seconds);
    }
}
