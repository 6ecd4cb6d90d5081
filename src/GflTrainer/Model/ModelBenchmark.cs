using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace GflTrainer.Model;

/// <summary>Timings of one benchmark run, per image (batch time / batch size), averaged over the timed iterations.</summary>
/// <param name="ForwardMsPerImage">eval-mode forward under no_grad (inference).</param>
/// <param name="ForwardBackwardMsPerImage">train-mode forward plus backward of a scalar over all head outputs
/// (no optimizer step, no loss targets).</param>
internal sealed record ModelBenchmarkResult(string Device, int Depth, int Height, int Width, int Batch, int Iterations,
    double ForwardMsPerImage, double ForwardBackwardMsPerImage);

/// <summary>Times the reference detector (ResNet-depth + FPN + GFL head, 80 classes) on random input; the PyTorch
/// counterpart is scripts/bench_model.py, so both frameworks can be compared on the same machine.</summary>
internal static class ModelBenchmark
{
    private const int WarmupIterations = 2;

    public static ModelBenchmarkResult Run(Device device, int depth = 50, int height = 800, int width = 1344,
        int batch = 2, int iterations = 10)
    {
        if (height < 32 || width < 32 || batch < 1 || iterations < 1)
            throw new GflConfigException($"benchmark needs height, width >= 32 and batch, iterations >= 1 " +
                $"(got {height}x{width}, batch {batch}, iterations {iterations})");
        torch.manual_seed(0);
        using var detector = GflDetector.Create(depth);
        detector.to(device); // before anything holds the parameters (to() replaces them)
        using var images = randn(batch, 3, height, width, device: device);

        detector.eval();
        double forward = Time(device, iterations, () =>
        {
            using var _ = no_grad();
            detector.forward(images);
        });

        detector.train();
        double forwardBackward = Time(device, iterations, () =>
        {
            var outputs = detector.forward(images);
            var total = outputs.ClassScores.Concat(outputs.BoxPredictions).Select(t => t.mean()).Aggregate((a, b) => a + b);
            total.backward();
            detector.zero_grad();
        });
        return new ModelBenchmarkResult(device.ToString(), depth, height, width, batch, iterations,
            forward / batch, forwardBackward / batch);
    }

    /// <summary>Mean milliseconds per call after warm-up; each call has its own dispose scope and ends with the step
    /// boundary collection of the real loops; CUDA is synchronised around the timed region so queued kernels are
    /// counted.</summary>
    private static double Time(Device device, int iterations, Action step)
    {
        for (int i = 0; i < WarmupIterations; i++)
        {
            using (NewDisposeScope()) step();
            Training.StepBoundaryGc.AfterStep(i + 1);
        }
        Synchronize(device);
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < iterations; i++)
        {
            using (NewDisposeScope()) step();
            Training.StepBoundaryGc.AfterStep(i + 1);   // as the training and evaluation loops do
        }
        Synchronize(device);
        return clock.Elapsed.TotalMilliseconds / iterations;
    }

    private static void Synchronize(Device device)
    {
        if (device.type == DeviceType.CUDA) cuda.synchronize(device);
    }
}
