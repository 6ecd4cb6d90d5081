using System.Diagnostics;
using GflTrainer.Runtime;
using GflTrainer.Runtime.Distributed;
using static TorchSharp.torch;

namespace GflTrainer.Benchmarks;

/// <summary><c>gfl bench allreduce</c> under a launcher: first checks every collective gfl uses against values each rank
/// can predict (a wrong result fails the command), then times the gradient all-reduce (bucketed mean, as training
/// uses it) for several sizes. Bandwidths follow nccl-tests: algbw = bytes / time, busbw = algbw x 2(n-1)/n, the
/// figure to compare with the link's (or memory's) peak.</summary>
internal static class AllReduceBenchmark
{
    public sealed record Size(double Megabytes, double MedianMs, double AlgBwGBps, double BusBwGBps);
    /// <param name="CopyGBps">one rank's memory copy rate at the largest size (read + write counted once, as algbw): the
    /// ceiling of an all-reduce through shared memory on one node.</param>
    public sealed record Result(DataParallel Ranks, IReadOnlyList<Size> Sizes, string Verified, double CopyGBps);

    public static Result Run(DataParallel ranks, IReadOnlyList<double> megabytes, int repeats, int warmup)
    {
        var c = ranks.Collective;
        var verified = Verify(c, ranks.Device);
        var sizes = new List<Size>();
        foreach (var mb in megabytes)
        {
            long n = Math.Max(1, (long)(mb * (1 << 20) / 4));
            // Three parameter-like tensors per size, so the buckets are packed as for a model's gradients.
            var parts = new[] { n / 2, n / 3, n - n / 2 - n / 3 }.Where(k => k > 0).Select(k => ones(k, device: ranks.Device)).ToList();
            var samples = new List<double>();
            for (int i = 0; i < warmup + repeats; i++)
            {
                c.Barrier();
                var clock = Stopwatch.StartNew();
                c.AllReduceMean(parts);
                if (ranks.Device.type == TorchSharp.DeviceType.CUDA) cuda.synchronize(ranks.Device);
                if (i >= warmup) samples.Add(clock.Elapsed.TotalMilliseconds);
            }
            // Each repetition starts at a barrier; its time is the mean over the ranks.
            double ms = BenchClock.Median(c.AllReduceMean(samples.ToArray())), bytes = n * 4.0;
            double alg = bytes / (ms / 1000) / 1e9;
            sizes.Add(new Size(bytes / (1 << 20), ms, alg, alg * 2 * (c.WorldSize - 1) / Math.Max(1, c.WorldSize)));
            foreach (var p in parts) p.Dispose();
        }
        return new Result(ranks, sizes, verified, CopyRate(ranks.Device, megabytes.Max(), repeats));
    }

    static double CopyRate(Device device, double megabytes, int repeats)
    {
        using var scope = NewDisposeScope();
        long n = Math.Max(1, (long)(megabytes * (1 << 20) / 4));
        var src = ones(n, device: device);
        var dst = empty(n, device: device);
        var ms = BenchClock.SampleMs(device, 1, Math.Max(1, repeats), () => dst.copy_(src));
        return n * 4.0 / (BenchClock.Median(ms) / 1000) / 1e9;
    }

    /// <summary>Each collective on values that depend on the rank, compared with the closed form.</summary>
    static string Verify(ICollective c, Device device)
    {
        int r = c.Rank, w = c.WorldSize;
        using var scope = NewDisposeScope();
        // Mean of (rank + 1) * (i + 1) over ranks = (w + 1) / 2 * (i + 1); sizes straddle a bucket boundary.
        long big = GradientBuckets.MaxBytes / 4 + 3;
        var a = arange(1, big + 1, dtype: ScalarType.Float32, device: device) * (r + 1);
        var b = full(new long[] { 5, 7 }, (double)(r + 1), dtype: ScalarType.Float64, device: device);
        c.AllReduceMean([a, b]);
        var expectA = arange(1, big + 1, dtype: ScalarType.Float32, device: device) * ((w + 1) / 2.0f);
        if (!a.allclose(expectA, rtol: 1e-6) || !b.allclose(full_like(b, (w + 1) / 2.0)))
            throw new InvalidOperationException($"rank {r}: all-reduce mean differs from the expected values");
        // Started as overlapped training starts them: two spans of one buffer, the later first (larger than a bucket, so
        // in two pieces), one wait for both (on a GPU the side stream; the check below reads them on the compute stream).
        long all = 2 * big, split = big / 3;
        var spans = arange(1, all + 1, dtype: ScalarType.Float32, device: device) * (r + 1);
        c.StartAllReduceMean(spans.narrow(0, split, all - split));
        c.StartAllReduceMean(spans.narrow(0, 0, split));
        c.WaitAllReduces();
        if (!spans.allclose(arange(1, all + 1, dtype: ScalarType.Float32, device: device) * ((w + 1) / 2.0f), rtol: 1e-6))
            throw new InvalidOperationException($"rank {r}: the started all-reduce differs from the expected values");
        var host = c.AllReduceMean([r + 1.0, -2.0 * r]);
        if (Math.Abs(host[0] - (w + 1) / 2.0) > 1e-12 || Math.Abs(host[1] + (w - 1.0)) > 1e-12)
            throw new InvalidOperationException($"rank {r}: host all-reduce gave {string.Join(", ", host)}");
        var bc = full(new long[] { 1000 }, (double)r, device: device);
        c.Broadcast([bc]);
        if (bc.max().item<float>() != 0 || bc.min().item<float>() != 0)
            throw new InvalidOperationException($"rank {r}: broadcast from rank 0 did not arrive");
        var gathered = c.AllGather(Enumerable.Repeat((byte)(r + 1), r + 1).ToArray());
        for (int q = 0; q < w; q++)
            if (gathered[q].Length != q + 1 || gathered[q].Any(x => x != q + 1))
                throw new InvalidOperationException($"rank {r}: all-gather entry of rank {q} is wrong");
        c.Barrier();
        return "all-reduce (tensor, 2 buckets; started spans; host), broadcast, all-gather";
    }

    public static BenchReport Report(Result r)
    {
        var report = new BenchReport("allreduce", r.Ranks.Device.ToString())
            .Add("launcher", r.Ranks.Launch.Launcher.ToString()).Add("backend", r.Ranks.Backend.ToString())
            .Add("world_size", r.Ranks.WorldSize).Add("verified", r.Verified).Add("memory_copy_GBps", r.CopyGBps);
        foreach (var s in r.Sizes)
        {
            var key = $"{s.Megabytes:0.###}MB";
            report.Add($"{key}_ms", s.MedianMs).Add($"{key}_algbw_GBps", s.AlgBwGBps).Add($"{key}_busbw_GBps", s.BusBwGBps);
        }
        return report;
    }
}
