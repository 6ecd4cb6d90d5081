using System.Diagnostics;
using GflTrainer.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace GflTrainer.Benchmarks;

/// <summary>The one timing loop of every benchmark: untimed warm-up calls, then one wall-clock sample per call. Each
/// call runs in its own dispose scope and ends with the step-boundary collection of the real training and evaluation
/// loops (timed, as it is paid there); CUDA is synchronised around each sample so queued kernels are counted.</summary>
public static class BenchClock
{
    /// <returns>milliseconds of each timed call, in order.</returns>
    public static List<double> SampleMs(Device device, int warmup, int iterations, Action call)
    {
        if (iterations < 1) throw new GflConfigException($"--repeats must be at least 1 (got {iterations})") { Key = "--repeats" };
        for (int i = 0; i < warmup; i++)
        {
            using (NewDisposeScope()) call();
            StepBoundaryGc.AfterStep(i + 1);
        }
        var samples = new List<double>(iterations);
        for (int i = 0; i < iterations; i++)
        {
            Synchronize(device);
            var clock = Stopwatch.StartNew();
            using (NewDisposeScope()) call();
            Synchronize(device);
            StepBoundaryGc.AfterStep(warmup + i + 1);
            samples.Add(clock.Elapsed.TotalMilliseconds);
        }
        return samples;
    }

    /// <summary>Median (mean of the two middle values for an even count), the figure every benchmark reports.</summary>
    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        if (sorted.Length == 0) throw new ArgumentException("no samples", nameof(values));
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    /// <summary>Peak resident set of this process so far, in MiB.</summary>
    public static double PeakRssMb()
    {
        using var process = Process.GetCurrentProcess();
        return process.PeakWorkingSet64 / 1048576.0;
    }

    internal static void Synchronize(Device device)
    {
        if (device.type == DeviceType.CUDA) cuda.synchronize(device);
    }
}
