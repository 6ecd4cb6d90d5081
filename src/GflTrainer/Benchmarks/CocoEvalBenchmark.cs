using System.Diagnostics;
using GflTrainer.Coco;

namespace GflTrainer.Benchmarks;

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
    public double EvaluatePlusAccumulateSeconds => BenchClock.Median(EvaluatePlusAccumulateRuns);
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
        return new CocoEvalTimings(repeats, BenchClock.Median(load), BenchClock.Median(evaluate),
            BenchClock.Median(accumulate), BenchClock.Median(summarize), both, BenchClock.Median(cpu),
            Environment.ProcessorCount, metrics!);
    }

    /// <summary>The rows of <c>gfl bench eval</c>: every number of <paramref name="r"/> in snake_case, as
    /// scripts/bench_cocoeval.py names them.</summary>
    public static BenchReport Report(CocoEvalTimings r)
    {
        // The evaluator is plain .NET (Parallel.For): don't load libtorch just to report its thread count, its pages
        // would count in the peak RSS compared with pycocotools'.
        var report = new BenchReport("eval", "cpu", r.Threads);
        foreach (var prop in r.GetType().GetProperties())
        {
            var v = prop.GetValue(r);
            var key = ToSnake(prop.Name);
            if (v is double or int or long or string && report.Rows.All(x => x.Key != key)) report.Add(key, v!);
        }
        return report.Add("peak_rss_mb", BenchClock.PeakRssMb());
    }

    static string ToSnake(string name) =>
        string.Concat(name.Select((c, i) => char.IsUpper(c) && i > 0 ? "_" + char.ToLowerInvariant(c) : char.ToLowerInvariant(c).ToString()));
}
