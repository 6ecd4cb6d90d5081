using GflTrainer.Coco;
using GflTrainer.Data;
using GflTrainer.Inference;
using GflTrainer.Model;
using Serilog;

namespace GflTrainer.Training;

/// <summary>Validation during training: every <c>train.eval_interval</c> epochs and after the last one (only after the
/// last when the interval is 0), the detector is evaluated on the validation split into <c>eval/epoch_N/</c> with the
/// same code as <c>gfl eval</c>, and the metrics go to the run log (per-category AP always in
/// <c>eval/epoch_N/metrics.json</c>; printed as mmdetection's classwise table with <c>evaluation.classwise</c>).</summary>
/// <param name="ranks">a data-parallel run evaluates sharded (each rank its part of the split, rank 0 the metric).</param>
internal sealed class PeriodicEvaluation(int interval, int epochs, DetectionLoader loader, GflPostprocessor postprocessor,
    CategoryMap categories, CocoGroundTruth groundTruth, string workDir, RunLog runLog, ILogger log, bool classwise = false,
    Runtime.ICollective? ranks = null, Reporting.EvaluationPlotOptions? plots = null)
{
    /// <summary>The validation loader (the watchdog's report lists what it is still reading).</summary>
    public DetectionLoader Loader => loader;

    /// <param name="epoch">1-based epoch just completed.</param>
    public bool IsDue(int epoch) => interval > 0 ? epoch % interval == 0 || epoch == epochs : epoch == epochs;

    /// <param name="watchdog">told of every evaluated batch: a validation image read that stalls ends the run too.</param>
    /// <returns>the metrics; null on data-parallel ranks other than 0.</returns>
    public CocoMetrics? Run(GflDetector model, int epoch, long iteration, CancellationToken cancel, StepWatchdog? watchdog = null)
    {
        watchdog?.Progress("eval", iteration);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        log.Information("evaluating epoch {Epoch} on {Count} validation images", epoch, groundTruth.ImageIds.Count);
        Action<int, int>? progress = watchdog is null ? null : (_, _) => watchdog.Progress("eval", iteration);
        var outDir = Path.Combine(workDir, "eval", $"epoch_{epoch}");
        var result = ranks is { WorldSize: > 1 }
            ? DetectionEvaluation.RunSharded(ranks, model, loader, postprocessor, categories, groundTruth, outDir, "validation detections", plots, progress, cancel)
            : DetectionEvaluation.Run(model, loader, postprocessor, categories, groundTruth, outDir, "validation detections", plots, progress, cancel);
        if (result is null) return null;
        var metrics = result.Metrics;
        foreach (var line in metrics.SummaryLines) log.Information("{Line}", line);
        if (classwise)
            foreach (var line in metrics.PerCategoryTable()) log.Information("{Line}", line);
        runLog.WriteEval(epoch, iteration, metrics);
        log.Information("epoch {Epoch}: bbox AP {AP:F4}, AP50 {AP50:F4} ({Sec:F1} s)", epoch, metrics.AP, metrics.AP50, clock.Elapsed.TotalSeconds);
        return metrics;
    }
}
