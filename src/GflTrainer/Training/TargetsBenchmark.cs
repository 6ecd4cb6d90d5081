using System.Diagnostics;
using GflTrainer.Model;
using GflTrainer.Training.Losses;
using static TorchSharp.torch;

namespace GflTrainer.Training;

/// <summary>Timing of GFL target assignment + loss on a COCO-sized batch, for <c>gfl bench targets</c>.</summary>
public static class TargetsBenchmark
{
    /// <summary>Milliseconds per call of ATSS assignment + GFL loss (forward only unless
    /// <paramref name="includeBackward"/>) for 2 images of 1333×800 padded to 1344×800, 80 classes, 50 random gts
    /// each (the reference's random boxes over the padded 1344×800), on random head outputs (seed 0). One untimed warm-up call precedes the timed ones.</summary>
    /// <param name="device">where the head outputs and targets live.</param>
    /// <param name="iterations">timed calls, at least 1.</param>
    /// <param name="includeBackward">also time the backward pass of the total loss.</param>
    public static double Run(Device device, int iterations, bool includeBackward = false)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(iterations, 1);
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

        void Call()
        {
            using var step = NewDisposeScope();
            var breakdown = loss.Compute(outputs, gtBoxes, gtLabels, padShapes);
            if (includeBackward)
            {
                foreach (var t in cls.Concat(box)) t.grad?.zero_();
                breakdown.Total.backward();
            }
            breakdown.Total.item<float>();   // device sync so the timing covers the work
        }

        Call();
        var watch = Stopwatch.StartNew();
        for (var i = 0; i < iterations; i++) Call();
        return watch.Elapsed.TotalMilliseconds / iterations;
    }
}
