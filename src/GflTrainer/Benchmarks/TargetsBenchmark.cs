using GflTrainer.Model;
using GflTrainer.Training;
using GflTrainer.Training.Losses;
using static TorchSharp.torch;

namespace GflTrainer.Benchmarks;

/// <summary>Timing of GFL target assignment + loss on a COCO-sized batch, for <c>gfl bench targets</c>.</summary>
public static class TargetsBenchmark
{
    /// <summary>Milliseconds of each call of ATSS assignment + GFL loss (forward only unless
    /// <paramref name="includeBackward"/>) for 2 images of 1333×800 padded to 1344×800, 80 classes, 50 random gts
    /// each (the reference's random boxes over the padded 1344×800), on random head outputs (seed 0), after
    /// <paramref name="warmup"/> untimed calls.</summary>
    /// <param name="device">where the head outputs and targets live.</param>
    /// <param name="iterations">timed calls, at least 1.</param>
    /// <param name="includeBackward">also time the backward pass of the total loss.</param>
    public static List<double> Run(Device device, int iterations, bool includeBackward = false, int warmup = 1)
    {
        const int batch = 2, numClasses = 80, gtsPerImage = 50, regMax = 16;
        const int height = 800, width = 1344;
        var strides = new[] { 8, 16, 32, 64, 128 };
        using var scope = NewDisposeScope();
        var generator = new Generator(0);

        // P3..P5 = pad/s; P6, P7 = ceil(previous / 2) (stride-2 convs), as the head produces them.
        var sizes = new List<(int H, int W)>();
        for (var l = 0; l < strides.Length; l++)
            sizes.Add(l < 3 ? (height / strides[l], width / strides[l]) : ((sizes[^1].H + 1) / 2, (sizes[^1].W + 1) / 2));
        var cls = sizes.Select(s => (randn(batch, numClasses, s.H, s.W, generator: generator) - 4).to(device).requires_grad_(true)).ToArray();
        var box = sizes.Select(s => randn(batch, 4 * (regMax + 1), s.H, s.W, generator: generator).to(device).requires_grad_(true)).ToArray();
        var (gtBoxes, gtLabels) = TrainStepBenchmark.RandomGroundTruth(generator, device, batch, width, height, gtsPerImage, numClasses);
        var padShapes = Enumerable.Repeat((height, width), batch).ToArray();
        var loss = new GflLoss(numClasses, regMax, strides);
        var outputs = new HeadOutputs(cls, box);

        return BenchClock.SampleMs(device, warmup, iterations, () =>
        {
            var breakdown = loss.Compute(outputs, gtBoxes, gtLabels, padShapes);
            if (includeBackward)
            {
                foreach (var t in cls.Concat(box)) t.grad?.zero_();
                breakdown.Total.backward();
            }
            breakdown.Total.item<float>();   // device sync so the timing covers the work
        });
    }

    /// <summary>The rows of <c>gfl bench targets</c>.</summary>
    public static BenchReport Report(Device device, IReadOnlyList<double> samplesMs) => new BenchReport("targets", device.ToString())
        .Add("median_ms", BenchClock.Median(samplesMs)).Add("samples_ms", samplesMs).Add("peak_rss_mb", BenchClock.PeakRssMb());
}
