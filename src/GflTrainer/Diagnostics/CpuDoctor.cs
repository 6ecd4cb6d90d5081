using System.Diagnostics;
using GflTrainer.Config;
using GflTrainer.Model;
using TorchSharp;
using GflTrainer.Runtime.Native;
using static TorchSharp.torch;

namespace GflTrainer.Diagnostics;

/// <summary>
/// <c>gfl doctor</c>: what libtorch's oneDNN believes about this CPU, what gfl did about it, and whether CPU
/// training computes correct convolution gradients here: every distinct convolution of the configured model (and
/// output-channel counts around the SIMD blocks) against float64 with a poisoned heap, at 1 and all threads, and
/// optionally a whole R50-GFL forward and backward (the path that crashed with SIGFPE on VMs hiding their caches), in
/// both memory formats (NCHW and runtime.channels_last).
/// </summary>
public static class CpuDoctor
{
    public sealed record Options(ModelConfig Model, bool R50, IReadOnlyList<long>? Sizes = null, IReadOnlyList<long>? Batches = null);

    /// <returns>true when every check passed.</returns>
    public static bool Run(Options options, TextWriter output, Serilog.ILogger? log = null)
    {
        Runtime.DeviceSelector.Resolve("cpu", log);   // libtorch loaded and the CPU workaround applied, as training does
        var report = TorchRuntime.Cpu;
        output.WriteLine($"CPU            {report.Cpu}");
        output.WriteLine($"oneDNN caches  {report.FromCpuid} (from CPUID, as oneDNN's Xbyak reads it)");
        output.WriteLine($"plausible      {(report.Implausible ? "NO: levels " + string.Join(",", report.FromCpuid.ImplausibleLevels().Select(l => "L" + l)) + " smaller than any real cache" : "yes")}");
        output.WriteLine($"workaround     {OneDnnCacheWorkaround.Name(report.Action)} ({OneDnnCacheWorkaround.ModeVariable}={OneDnnCacheWorkaround.Name(report.Mode)})"
            + (report.Written is { } w ? $": oneDNN now plans for [{w}] from {report.Detail}" : report.Detail.Length > 0 ? ": " + report.Detail : ""));
        output.WriteLine($"oneDNN convs   {(OneDnnCacheWorkaround.OneDnnEnabled() ? "on" : "off")}");

        var shapes = new List<ConvShape>();
        using (var scope = NewDisposeScope())
        {
            using var model = DetectorFactory.CreateDetector(options.Model);
            shapes.AddRange(ConvShape.Of(model));
        }
        // Output channels on both sides of the 8- and 16-lane blocks, as user configs (num_classes, reg_max) give.
        foreach (long cout in new long[] { 1, 3, 7, 8, 15, 17, 20, 68 })
            shapes.Add(new ConvShape(32, cout, 3, 1, 1));
        shapes = shapes.Distinct().ToList();
        var sizes = options.Sizes ?? [2, 5, 8];
        var batches = options.Batches ?? [1, 3];
        var threads = new[] { 1, Math.Max(1, torch.get_num_threads()) }.Distinct().ToArray();
        bool ok = true;
        // Both memory formats: runtime.channels_last runs oneDNN's NHWC kernels and reorders, another code path.
        foreach (var channelsLast in new[] { false, true })
        {
            var layout = channelsLast ? "channels_last" : "NCHW";
            var sw = Stopwatch.StartNew();
            var failures = ConvGradientCheck.Run(shapes, sizes, batches, threads, channelsLast: channelsLast);
            int cases = shapes.Count * sizes.Count * batches.Count * threads.Length;
            output.WriteLine($"conv gradients {(failures.Count == 0 ? "ok" : "WRONG")}: {layout}, {shapes.Count} shapes x {sizes.Count} sizes x {batches.Count} batches x threads {string.Join("/", threads)}"
                + $" against float64, heap poisoned with NaN; {failures.Count} of {cases} cases wrong ({sw.Elapsed.TotalSeconds:F1} s)");
            foreach (var f in failures.Take(20)) output.WriteLine($"  {f}");
            if (failures.Count > 20) output.WriteLine($"  ... and {failures.Count - 20} more");
            ok &= failures.Count == 0;
            if (options.R50) ok &= R50ForwardBackward(output, channelsLast);
        }
        output.WriteLine(ok ? "result         ok" : "result         PROBLEMS (see above; docs/cpu-correctness.md)");
        return ok;
    }

    /// <summary>R50-GFL forward and backward at 256x256, batch 2: every 1x1 and strided convolution's backward of
    /// the reference model runs (layer4's 1024->2048 stride-2 downsample is where brgemm divided by zero).</summary>
    private static bool R50ForwardBackward(TextWriter output, bool channelsLast)
    {
        var sw = Stopwatch.StartNew();
        using var scope = NewDisposeScope();
        var m = new ModelConfig();
        using var model = DetectorFactory.CreateDetector(m);
        model.train();
        using var gen = new Generator(0);
        var x = randn(new long[] { 2, 3, 256, 256 }, generator: gen);
        if (channelsLast)
        {
            Runtime.ChannelsLast.Apply(model);
            x = Runtime.ChannelsLast.Of(x);
        }
        var outputs = model.forward(x);
        var loss = zeros(1);
        foreach (var t in outputs.ClassScores.Concat(outputs.BoxPredictions))
            loss = loss + (t * randn(t.shape, generator: gen)).sum();
        loss.backward();
        var bad = model.named_parameters().Where(p => p.parameter.grad is { } g && !g.isfinite().all().item<bool>())
            .Select(p => p.name).ToList();
        output.WriteLine($"R50 backward   {(bad.Count == 0 ? "ok" : "NON-FINITE gradients in " + string.Join(", ", bad.Take(5)))} ({(channelsLast ? "channels_last" : "NCHW")}, 256x256, batch 2, {sw.Elapsed.TotalSeconds:F1} s)");
        return bad.Count == 0;
    }
}
