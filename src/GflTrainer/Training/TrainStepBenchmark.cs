using System.Diagnostics;
using GflTrainer.Config;
using GflTrainer.Evaluation;
using GflTrainer.Model;
using GflTrainer.Training.Losses;
using TorchSharp;
using static TorchSharp.torch;

namespace GflTrainer.Training;

/// <summary>Timing of one benchmark: median and all samples in milliseconds per call.</summary>
public sealed record StepTiming(string Name, string Device, int Batch, int Height, int Width, int Iterations,
    double MedianMs, double ImagesPerSecond, IReadOnlyList<double> SamplesMs, long PeakRssBytes, int Threads, string Amp,
    double? GradCheckMedianMs = null);

/// <summary>
/// The R50-GFL training step and inference on synthetic inputs shaped like COCO at (1333, 800): images padded to
/// 800x1344, 50 random boxes per image over 80 classes (seeded), exactly what scripts/reference/bench.py times so
/// the two can be compared on one machine. The train step is forward, targets + losses, backward and SGD update.
/// </summary>
public static class TrainStepBenchmark
{
    /// <param name="config">when given, the model, loss and gradient clipping of this configuration (e.g.
    /// configs/quickstart.yaml) instead of the R50-GFL of <paramref name="depth"/>; the input size and batch stay
    /// the benchmark's arguments.</param>
    public static StepTiming TrainStep(Device device, int depth = 50, int batch = 2, int height = 800, int width = 1344,
        int iterations = 5, int warmup = 2, string amp = "off", GflConfig? config = null)
    {
        torch.manual_seed(0);
        using var model = config is null ? GflDetector.Create(depth) : DetectorFactory.CreateDetector(config.Model);
        model.to(device);
        model.train();
        var named = model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => (p.name, (Tensor)p.parameter)).ToList();
        using var sgd = new Sgd(named, 0.01, 0.9, 1e-4);
        var loss = config is null ? new GflLoss(80) : DetectorFactory.CreateLoss(config.Model);
        int numClasses = config?.Model.Head.NumClasses ?? 80;
        ScalarType? ampType = amp switch { "bf16" => ScalarType.BFloat16, "fp16" => ScalarType.Float16, "off" => null,
            _ => throw new GflConfigException($"--amp {amp}: expected off, bf16 or fp16") };
        var update = new OptimizerStep(sgd, amp == "fp16" ? new LossScaler() : null, config?.Train.GradClip);
        using var inputs = NewDisposeScope();
        var (images, boxes, labels) = SyntheticBatch(device, batch, height, width, numClasses);
        var pads = Enumerable.Repeat((height, width), batch).ToList();
        inputs.Detach(images); foreach (var t in boxes.Concat(labels)) inputs.Detach(t);

        var samples = Time(device, iterations, warmup, () =>
        {
            HeadOutputs outputs;
            using (Autocast.Enter(ampType, device)) outputs = model.forward(images);
            if (ampType is not null)
                outputs = new HeadOutputs(outputs.ClassScores.Select(x => x.to(ScalarType.Float32)).ToList(),
                    outputs.BoxPredictions.Select(x => x.to(ScalarType.Float32)).ToList());
            var l = loss.Compute(outputs, boxes, labels, pads);
            l.Total.item<float>();   // the trainer's host sync on the loss values, before backward as there
            // The trainer's update: backward, gradient check, clip, SGD (random weights cannot produce a NaN here).
            if (update.Run(l.Total).NonFinite is { } bad)
                throw new GflRuntimeException($"bench train-step: non-finite gradient in {bad.Parameter}");
        });
        // The gradient check alone (part of every step above), on the last step's real gradients.
        var check = new List<double>();
        var trainable = named.Select(n => n.Item2).ToList();
        for (int i = 0; i < 21; i++)
        {
            var sw = Stopwatch.StartNew();
            if (!GradientCheck.AllFinite(trainable)) throw new GflRuntimeException("bench train-step: non-finite gradient");
            check.Add(sw.Elapsed.TotalMilliseconds);
        }
        images.Dispose(); foreach (var t in boxes.Concat(labels)) t.Dispose();
        return Result("train-step", device, batch, height, width, samples, amp) with { GradCheckMedianMs = Median(check) };
    }

    public static StepTiming Inference(Device device, int depth = 50, int batch = 1, int height = 800, int width = 1344,
        int iterations = 5, int warmup = 2)
    {
        torch.manual_seed(0);
        using var model = GflDetector.Create(depth);
        model.to(device);
        model.eval();
        var post = new GflPostprocessor(new AnchorGenerator(new[] { 8, 16, 32, 64, 128 }));
        using var images = randn(batch, 3, height, width, device: device);
        var metas = Enumerable.Range(0, batch).Select(i => new Data.ImageMeta(i, "", height, Math.Min(width, 1333), height, Math.Min(width, 1333), height, width,
            1, 1, false)).ToList();
        var samples = Time(device, iterations, warmup, () =>
        {
            using var _ = no_grad();
            var dets = post.Predict(model.forward(images), metas);
            foreach (var d in dets) d.Scores.cpu();   // the boxes reach the host, as a user's results would
        });
        return Result("infer", device, batch, height, width, samples, "off");
    }

    /// <summary>Random images and gts as the reference benchmark draws them (seed 0): <see cref="RandomGroundTruth"/>
    /// inside the 1333x800 image.</summary>
    internal static (Tensor Images, List<Tensor> Boxes, List<Tensor> Labels) SyntheticBatch(Device device, int batch, int height, int width,
        int numClasses = 80)
    {
        var g = new Generator(0);
        var images = randn(batch, 3, height, width, generator: g).to(device);
        var (boxes, labels) = RandomGroundTruth(g, device, batch, Math.Min(width, 1333), height, numClasses: numClasses);
        return (images, boxes, labels);
    }

    /// <summary><paramref name="perImage"/> boxes per image over <paramref name="numClasses"/> classes, drawn from
    /// <paramref name="g"/> exactly as the reference's <c>random_gts</c> (scripts/reference/bench.py): sides uniform
    /// in 8..W/3 and 8..H/3 px, top-left corner uniform where the box fits, so both benchmarks assign comparable gts.</summary>
    internal static (List<Tensor> Boxes, List<Tensor> Labels) RandomGroundTruth(Generator g, Device device, int batch,
        int width, int height, int perImage = 50, int numClasses = 80)
    {
        var boxes = new List<Tensor>(); var labels = new List<Tensor>();
        var size = tensor(new float[] { width, height });
        for (int i = 0; i < batch; i++)
        {
            var wh = rand(perImage, 2, generator: g) * tensor(new float[] { width / 3f - 8, height / 3f - 8 }) + 8;
            var xy = rand(perImage, 2, generator: g) * (size - wh);
            boxes.Add(cat(new[] { xy, xy + wh }, 1).to(device));
            labels.Add(randint(0, numClasses, perImage, generator: g).to(device));
        }
        return (boxes, labels);
    }

    private static List<double> Time(Device device, int iterations, int warmup, Action step)
    {
        if (iterations < 1) throw new GflConfigException("--iterations must be at least 1");
        for (int i = 0; i < warmup; i++) { using (NewDisposeScope()) step(); StepBoundaryGc.AfterStep(i + 1); }
        var samples = new List<double>();
        for (int i = 0; i < iterations; i++)
        {
            if (device.type == DeviceType.CUDA) torch.cuda.synchronize(device);
            var sw = Stopwatch.StartNew();
            using (NewDisposeScope()) step();
            if (device.type == DeviceType.CUDA) torch.cuda.synchronize(device);
            StepBoundaryGc.AfterStep(warmup + i + 1);   // as the training and evaluation loops do, and timed as there
            samples.Add(sw.Elapsed.TotalMilliseconds);
        }
        return samples;
    }

    private static double Median(List<double> samples)
    {
        var sorted = samples.OrderBy(x => x).ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }

    private static StepTiming Result(string name, Device device, int batch, int h, int w, List<double> samples, string amp)
    {
        double median = Median(samples);
        using var proc = Process.GetCurrentProcess();
        return new StepTiming(name, device.ToString(), batch, h, w, samples.Count, median, batch * 1000.0 / median, samples,
            proc.PeakWorkingSet64, torch.get_num_threads(), amp);
    }
}
