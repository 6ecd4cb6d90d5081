using GflTrainer.Config;
using GflTrainer.Data;
using GflTrainer.Training.Losses;
using GflTrainer.Data.Transforms;
using System.Diagnostics;
using TorchSharp;
using GflTrainer.Coco;

namespace GflTrainer.Benchmarks;

/// <summary>Throughput of the input pipeline, for docs/performance-data.md.</summary>
/// <param name="Targets">the head whose training targets the workers built, or none.</param>
/// <param name="BatchesWithTargets">timed batches that arrived with their targets built.</param>
public sealed record DataBenchmarkResult(int Images, int Workers, double PipelineImagesPerSecond, DataStageTimes Stages,
    string Targets = "none", int BatchesWithTargets = 0)
{
    /// <summary>Read + decode alone on one thread.</summary>
    public double DecodeOnlyImagesPerSecond => 1000 / (Stages.ReadMs + Stages.DecodeMs);
}

/// <summary>Milliseconds per image of each stage, one thread, in sequence (where the time of one loader core goes).</summary>
public sealed record DataStageTimes(double ReadMs, double DecodeMs, double ResizeFlipMs, double CollateMs)
{
    public double TotalMs => ReadMs + DecodeMs + ResizeFlipMs + CollateMs;
}

/// <summary>Measures each stage's time per image on one thread (<see cref="DataStageTimes"/>:
/// what one loader core spends), and decode + resize to (1333, 800) + flip + normalise + pad + collate (batch 2)
/// through <see cref="DetectionLoader"/> with the given worker count, on the CPU, after two untimed warm-up batches
/// (the consuming thread normalises and pads, as it does in training).</summary>
public static class DataBenchmark
{
    /// <param name="targetsHead">when given, the loader's workers also build each batch's training targets for
    /// mmdetection's R50 model of this head (with the dataset's classes), as <c>runtime.targets: loader</c> does: the
    /// pipeline's cost with them.</param>
    public static DataBenchmarkResult Run(string annotationFile, string imageDir, int workers, int count, HeadType? targetsHead = null)
    {
        var dataset = CocoDataset.ForTraining(CocoAnnotations.Load(annotationFile), imageDir);
        if (dataset.Count == 0) throw new DataFileException(annotationFile, "no training images");
        int n = Math.Min(count, dataset.Count);
        HostTargets? targets = null;
        if (targetsHead is { } head)
        {
            var model = TrainStepBenchmark.Reference(50, head).Model;
            targets = new HostTargets(DenseHeadLoss.FromConfig(model with { Head = model.Head with { NumClasses = dataset.Categories.Categories.Count } }).TargetBuilder);
        }

        var stages = Stages(dataset, n);
        var sw = new Stopwatch();

        // The first WarmupBatches batches (worker start-up, JIT) are not timed, as scripts/reference/bench.py data
        // times batch arrivals after its warm-up; the epoch may wrap into the next one.
        const int WarmupBatches = 2;
        var options = new LoaderOptions { BatchSize = 2, Workers = workers, Prefetch = Math.Max(2, workers), Seed = 0 };
        var loader = DetectionLoader.Create(dataset, new DetectionTransform(MultiScale.Single, 0.5),
            new BatchCollator(new Normalize(), new Pad(), torch.CPU), options, training: true, targets: targets);
        int seen = 0, batches = 0, withTargets = 0;
        for (int epoch = 0; seen < n; epoch++)
        {
            int before = batches;
            foreach (var batch in loader.Epoch(epoch))
            {
                if (++batches == WarmupBatches) sw.Restart();
                else if (batches > WarmupBatches)
                {
                    seen += batch.Metas.Count;
                    if (batch.Targets is not null) withTargets++;
                }
                batch.Dispose();
                if (seen >= n) break;
            }
            if (batches == before) throw new DataFileException(annotationFile, "the loader yields no batches");
        }
        double pipeline = seen / sw.Elapsed.TotalSeconds;
        return new DataBenchmarkResult(seen, workers, pipeline, stages, targetsHead?.ToString().ToLowerInvariant() ?? "none", withTargets);
    }

    /// <summary>Each stage timed per image over <paramref name="n"/> images, in three passes (after one untimed
    /// image); the pass with the median total is reported, so one disturbed pass does not decide the figure.</summary>
    static DataStageTimes Stages(IDetectionDataset dataset, int n)
    {
        var transform = new DetectionTransform(MultiScale.Single, 0.5);
        var collator = new BatchCollator(new Normalize(), new Pad(), torch.CPU);
        var passes = new List<DataStageTimes>();
        Pass(1);
        for (int p = 0; p < 3; p++) passes.Add(Pass(n));
        return passes.OrderBy(t => t.TotalMs).ElementAt(1);

        DataStageTimes Pass(int count)
        {
            double read = 0, decode = 0, resize = 0, collate = 0;
            for (int i = 0; i < count; i++)
            {
                var entry = dataset.Entries[i];
                long t0 = Stopwatch.GetTimestamp();
                var bytes = File.ReadAllBytes(dataset.PathOf(entry));
                long t1 = Stopwatch.GetTimestamp();
                var image = ImageDecoder.Decode(bytes, entry.FileName);
                long t2 = Stopwatch.GetTimestamp();
                var sample = transform.Apply(image, entry, SampleRng.For(0, 0, i));
                long t3 = Stopwatch.GetTimestamp();
                using (torch.NewDisposeScope()) collator.Collate([sample]);
                long t4 = Stopwatch.GetTimestamp();
                PixelBufferPool.Return(image.Pixels);
                PixelBufferPool.Return(sample.Pixels);
                read += Stopwatch.GetElapsedTime(t0, t1).TotalMilliseconds;
                decode += Stopwatch.GetElapsedTime(t1, t2).TotalMilliseconds;
                resize += Stopwatch.GetElapsedTime(t2, t3).TotalMilliseconds;
                collate += Stopwatch.GetElapsedTime(t3, t4).TotalMilliseconds;
            }
            return new DataStageTimes(read / count, decode / count, resize / count, collate / count);
        }
    }

    /// <summary>The rows of <c>gfl bench data</c>.</summary>
    public static BenchReport Report(DataBenchmarkResult r) => new BenchReport("data", "cpu")
        .Add("workers", r.Workers).Add("targets", r.Targets).Add("images", r.Images).Add("decode_images_per_s", r.DecodeOnlyImagesPerSecond)
        .Add("images_per_s", r.PipelineImagesPerSecond).Add("images_per_s_per_worker", r.PipelineImagesPerSecond / Math.Max(1, r.Workers))
        .Add("stage_read_ms", r.Stages.ReadMs).Add("stage_decode_ms", r.Stages.DecodeMs).Add("stage_resize_flip_ms", r.Stages.ResizeFlipMs)
        .Add("stage_collate_ms", r.Stages.CollateMs).Add("stages_total_ms", r.Stages.TotalMs).Add("images_per_s_one_core", 1000 / r.Stages.TotalMs)
        .Add("peak_rss_mb", BenchClock.PeakRssMb());
}
