using System.Diagnostics;

namespace GflTrainer.Evaluation;

/// <summary>Wall-clock seconds of each evaluation step, median over the repeats, and every run.</summary>
/// <param name="LoadSeconds">Reading and validating both files (pycocotools: <c>COCO(gt)</c> + <c>loadRes</c>).</param>
/// <param name="EvaluateSeconds">Per image/category matching (pycocotools <c>evaluate()</c>).</param>
/// <param name="AccumulateSeconds">Precision/recall tables (pycocotools <c>accumulate()</c>).</param>
/// <param name="SummarizeSeconds">The 12 stats and per-category AP.</param>
/// <param name="EvaluatePlusAccumulateRuns">Wall seconds of evaluate + accumulate, per repeat.</param>
/// <param name="EvaluatePlusAccumulateCpuSeconds">Median process CPU seconds (all threads) of evaluate + accumulate:
/// steadier than wall time on a shared machine, and comparable with Python's time.process_time().</param>
/// <param name="Threads">Worker threads the parallel loops could use (Environment.ProcessorCount).</param>
public sealed record CocoEvalTimings(
    int Repeats, double LoadSeconds, double EvaluateSeconds, double AccumulateSeconds, double SummarizeSeconds,
    IReadOnlyList<double> EvaluatePlusAccumulateRuns, double EvaluatePlusAccumulateCpuSeconds, int Threads, CocoMetrics Metrics)
{
    /// <summary>Median of evaluate + accumulate, the figure pycocotools' 2.0 s is compared with.</summary>
    public double EvaluatePlusAccumulateSeconds => Median(EvaluatePlusAccumulateRuns);

    internal static double Median(IReadOnlyList<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }
}

/// <summary>Times the evaluation steps on two files, for <c>gfl bench eval</c> and docs/performance-eval.md
/// (scripts/bench_cocoeval.py times pycocotools the same way).</summary>
public static class CocoEvalBenchmark
{
    /// <summary>Loads and evaluates <paramref name="repeats"/> times (after one untimed warm-up run that JIT-compiles
    /// the code) and returns the median time of each step.</summary>
    public static CocoEvalTimings Run(string annotationsPath, string detectionsPath, int repeats = 3)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(repeats, 1);
        CocoEvaluator.EvaluateFiles(annotationsPath, detectionsPath);
        var load = new List<double>();
        var evaluate = new List<double>();
        var accumulate = new List<double>();
        var summarize = new List<double>();
        var both = new List<double>();
        var cpu = new List<double>();
        using var process = Process.GetCurrentProcess();
        CocoMetrics? metrics = null;
        for (int i = 0; i < repeats; i++)
        {
            var clock = Stopwatch.StartNew();
            var gt = CocoGroundTruth.Load(annotationsPath);
            var dets = CocoDetections.Load(detectionsPath, gt);
            load.Add(clock.Elapsed.TotalSeconds);
            var evaluator = new CocoEvaluator(gt);
            process.Refresh();
            var cpuStart = process.TotalProcessorTime;
            clock.Restart();
            var images = evaluator.EvaluateImages(dets);
            double e = clock.Elapsed.TotalSeconds;
            clock.Restart();
            var accumulation = evaluator.Accumulate(images);
            double a = clock.Elapsed.TotalSeconds;
            process.Refresh();
            cpu.Add((process.TotalProcessorTime - cpuStart).TotalSeconds);
            clock.Restart();
            metrics = accumulation.Summarize(gt.Warnings.Concat(dets.Warnings).ToArray());
            summarize.Add(clock.Elapsed.TotalSeconds);
            evaluate.Add(e);
            accumulate.Add(a);
            both.Add(e + a);
        }
        return new CocoEvalTimings(repeats, CocoEvalTimings.Median(load), CocoEvalTimings.Median(evaluate),
            CocoEvalTimings.Median(accumulate), CocoEvalTimings.Median(summarize), both, CocoEvalTimings.Median(cpu),
            Environment.ProcessorCount, metrics!);
    }
}
