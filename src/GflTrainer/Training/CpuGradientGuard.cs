using System.Diagnostics;
using Serilog;
using TorchSharp;
using GflTrainer.Runtime.Native;

namespace GflTrainer.Training;

/// <summary>
/// Before a CPU training run: the backward of every distinct convolution of the model, at the run's thread count,
/// against float64 with a poisoned heap (<see cref="ConvGradientCheck"/>; 0.33 s for the quick-start model, 1.4 s for
/// R50-GFL with another job on the cores). A week-long run must
/// not learn from wrong gradients: libtorch's oneDNN computed them silently on VMs that hide their caches
/// (<see cref="OneDnnCacheWorkaround"/> cures that known cause), and this catches the next such cause on any machine.
/// On a failure gfl switches to libtorch's own convolutions and checks again; if those are wrong too, the run stops.
/// A channels_last run is checked in that layout: oneDNN runs other (NHWC) kernels and reorders for it.
/// </summary>
public static class CpuGradientGuard
{
    public static void Verify(torch.nn.Module model, ILogger log, bool channelsLast = false)
    {
        var shapes = ConvShape.Of(model);
        var sw = Stopwatch.StartNew();
        var failures = Check(shapes, channelsLast);
        log.Debug("CPU convolution gradients checked against float64{Layout}: {Shapes} shapes, {Failures} wrong ({Ms:F0} ms)",
            channelsLast ? " in channels_last" : "", shapes.Count, failures.Count, sw.Elapsed.TotalMilliseconds);
        if (failures.Count == 0) return;
        log.Warning("libtorch's oneDNN computes wrong convolution gradients on this machine ({Count} cases, e.g. {First}); " +
            "switching to libtorch's own CPU convolutions (slower). 'gfl doctor' shows the details.", failures.Count, failures[0]);
        OneDnnCacheWorkaround.DisableOneDnn();
        failures = Check(shapes, channelsLast);
        if (failures.Count > 0)
            throw new GflRuntimeException($"CPU convolution gradients are wrong on this machine even without oneDNN " +
                $"({failures.Count} cases, e.g. {failures[0]}); refusing to train. Run 'gfl doctor' and report its output.");
    }

    private static IReadOnlyList<ConvGradientFailure> Check(IReadOnlyList<ConvShape> shapes, bool channelsLast) =>
        ConvGradientCheck.Run(shapes, sizes: [5], batches: [2], threads: [torch.get_num_threads()], channelsLast: channelsLast);
}
