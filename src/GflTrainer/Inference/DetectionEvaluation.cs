using GflTrainer.Coco;
using GflTrainer.Data;
using GflTrainer.Model;

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
        CategoryMap categories, CocoGroundTruth groundTruth, string outDir, string source,
        Action<int, int>? progress = null, CancellationToken cancel = default)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var dets = DetectionInference.Run(model, loader, postprocessor, categories, progress, cancel);
        double seconds = clock.Elapsed.TotalSeconds;
        Directory.CreateDirectory(outDir);
        DetectionInference.WriteResults(Path.Combine(outDir, "detections.json"), dets);
        var metrics = new CocoEvaluator(groundTruth).Evaluate(CocoDetections.Create(groundTruth, dets, source));
        var path = Path.Combine(outDir, "metrics.json");
        File.WriteAllText(path + ".tmp", metrics.ToJson());
        File.Move(path + ".tmp", path, overwrite: true);
        return new DetectionEvaluationResult(metrics, dets.Count, seconds);
    }
}
