using GflTrainer.Data.Transforms;
using System.Diagnostics;
using TorchSharp;

namespace GflTrainer.Data;

/// <summary>Throughput of the input pipeline, for docs/performance-data.md.</summary>
public sealed record DataBenchmarkResult(int Images, int Workers, double DecodeOnlyImagesPerSecond, double PipelineImagesPerSecond);

/// <summary>Measures decode alone (one thread) and decode + resize to (1333, 800) + flip + normalise + pad + collate
/// (batch 2) through <see cref="DetectionLoader"/> with the given worker count, on the CPU, after two untimed
/// warm-up batches.</summary>
public static class DataBenchmark
{
    public static DataBenchmarkResult Run(string annotationFile, string imageDir, int workers, int count, bool fastResize = false)
    {
        var dataset = CocoDataset.ForTraining(CocoAnnotations.Load(annotationFile), imageDir);
        if (dataset.Count == 0) throw new GflRuntimeException($"{annotationFile}: no training images");
        int n = Math.Min(count, dataset.Count);

        ImageDecoder.Decode(dataset.PathOf(dataset.Entries[0]));   // warm-up (codec init)
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < n; i++) ImageDecoder.Decode(dataset.PathOf(dataset.Entries[i]));
        double decode = n / sw.Elapsed.TotalSeconds;

        // The first WarmupBatches batches (worker start-up, JIT) are not timed, as scripts/reference/bench.py data
        // times batch arrivals after its warm-up; the epoch may wrap into the next one.
        const int WarmupBatches = 2;
        var options = new LoaderOptions { BatchSize = 2, Workers = workers, Prefetch = Math.Max(2, workers), Seed = 0 };
        var loader = DetectionLoader.Create(dataset, new DetectionTransform(MultiScale.Single, 0.5, fastResize),
            new BatchCollator(new Normalize(), new Pad(), torch.CPU), options, training: true);
        int seen = 0, batches = 0;
        for (int epoch = 0; seen < n; epoch++)
        {
            int before = batches;
            foreach (var batch in loader.Epoch(epoch))
            {
                if (++batches == WarmupBatches) sw.Restart();
                else if (batches > WarmupBatches) seen += batch.Metas.Count;
                batch.Dispose();
                if (seen >= n) break;
            }
            if (batches == before) throw new GflRuntimeException($"{annotationFile}: the loader yields no batches");
        }
        double pipeline = seen / sw.Elapsed.TotalSeconds;
        return new DataBenchmarkResult(seen, workers, decode, pipeline);
    }
}
