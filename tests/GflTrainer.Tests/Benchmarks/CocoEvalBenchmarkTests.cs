using System.Text.Json;
using Xunit;
using Xunit.Abstractions;
using GflTrainer.Benchmarks;

namespace GflTrainer.Tests.Benchmarks;

/// <summary>The benchmark entry point on large_timing: it must report the right numbers and its step timings.
/// Timing is printed, not asserted (the 2-core test machine is shared); docs/performance-eval.md has the figures.</summary>
public sealed class CocoEvalBenchmarkTests(ITestOutputHelper output)
{
    [Fact]
    [Trait("Category", "Slow")]
    public void LargeTiming_ReportsStepTimes_AndPycocotoolsNumbers()
    {
        string dir = TestPaths.Fixtures("cocoeval", "large_timing");
        var timings = CocoEvalBenchmark.Run(Path.Combine(dir, "gt.json"), Path.Combine(dir, "dets.json"), repeats: 3);
        output.WriteLine($"load {timings.LoadSeconds:F3} s, evaluate {timings.EvaluateSeconds:F3} s, accumulate " +
            $"{timings.AccumulateSeconds:F3} s, evaluate+accumulate {timings.EvaluatePlusAccumulateSeconds:F3} s " +
            $"(CPU {timings.EvaluatePlusAccumulateCpuSeconds:F3} s on {timings.Threads} threads) " +
            $"(runs {string.Join(", ", timings.EvaluatePlusAccumulateRuns.Select(s => s.ToString("F3")))})");
        Assert.Equal(3, timings.EvaluatePlusAccumulateRuns.Count);
        Assert.All(timings.EvaluatePlusAccumulateRuns, s => Assert.True(s > 0));
        using var expected = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "expected.json")));
        var want = expected.RootElement.GetProperty("stats").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        for (int i = 0; i < want.Length; i++) Assert.Equal(want[i], timings.Metrics.Stats[i], 1e-6);
    }
}
