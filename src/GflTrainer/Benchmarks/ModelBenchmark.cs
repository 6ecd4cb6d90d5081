using GflTrainer.Model;
using GflTrainer.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace GflTrainer.Benchmarks;

/// <summary>Timings of one benchmark run, per image (batch time / batch size), averaged over the timed iterations.</summary>
/// <param name="ForwardMsPerImage">eval-mode forward under no_grad (inference).</param>
/// <param name="ForwardBackwardMsPerImage">train-mode forward plus backward of a scalar over all head outputs
/// (no optimizer step, no loss targets).</param>
public sealed record ModelBenchmarkResult(string Device, int Depth, int Height, int Width, int Batch, int Iterations,
    double ForwardMsPerImage, double ForwardBackwardMsPerImage, bool ChannelsLast = false);

/// <summary>Times the reference detector (ResNet-depth + FPN + GFL head, 80 classes) on random input; the PyTorch
/// counterpart is scripts/bench_model.py, so both frameworks can be compared on the same machine.</summary>
public static class ModelBenchmark
{
    private const int WarmupIterations = 2;

    public static ModelBenchmarkResult Run(Device device, int depth = 50, int height = 800, int width = 1344,
        int batch = 2, int iterations = 10, bool channelsLast = false)
    {
        if (height < 32 || width < 32 || batch < 1 || iterations < 1)
            throw new GflConfigException($"benchmark needs height, width >= 32 and batch, iterations >= 1 " +
                $"(got {height}x{width}, batch {batch}, iterations {iterations})");
        torch.manual_seed(0);
        using var detector = GflDetector.Create(depth);
        detector.to(device); // before anything holds the parameters (to() replaces them)
        using var images = randn(batch, 3, height, width, device: device);
        if (channelsLast)
        {
            // NHWC memory under the NCHW shape for the input and every conv weight (training does the same through
            // Sgd's flat buffers).
            images.set_(Runtime.ChannelsLast.Of(images));
            Runtime.ChannelsLast.Apply(detector);
        }

        detector.eval();
        double forward = BenchClock.SampleMs(device, WarmupIterations, iterations, () =>
        {
            using var _ = no_grad();
            detector.forward(images);
        }).Average();

        detector.train();
        double forwardBackward = BenchClock.SampleMs(device, WarmupIterations, iterations, () =>
        {
            var outputs = detector.forward(images);
            var total = outputs.ClassScores.Concat(outputs.BoxPredictions).Select(t => t.mean()).Aggregate((a, b) => a + b);
            total.backward();
            detector.zero_grad();
        }).Average();
        return new ModelBenchmarkResult(device.ToString(), depth, height, width, batch, iterations,
            forward / batch, forwardBackward / batch, channelsLast);
    }

    /// <summary>The rows of <c>gfl bench model</c>.</summary>
    public static BenchReport Report(ModelBenchmarkResult r) => new BenchReport("model", r.Device)
        .Add("depth", r.Depth).Add("channels_last", r.ChannelsLast).Add("batch", r.Batch).Add("height", r.Height).Add("width", r.Width)
        .Add("forward_ms_per_image", r.ForwardMsPerImage).Add("forward_backward_ms_per_image", r.ForwardBackwardMsPerImage)
        .Add("peak_rss_mb", BenchClock.PeakRssMb());
}
