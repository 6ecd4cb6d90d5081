using System.Collections.Concurrent;
using GflTrainer.Data.Transforms;
using GflTrainer.Runtime.Native;
using GflTrainer.Training.Losses;
using Serilog;
using TorchSharp;

namespace GflTrainer.Data;

/// <summary>Loader settings. <see cref="Workers"/> = 0 decodes on the consuming thread.</summary>
public sealed record LoaderOptions
{
    public int BatchSize { get; init; } = 2;
    public int Workers { get; init; } = 2;
    /// <summary>Batches decoded ahead of the consumer (bounded memory: about Prefetch·BatchSize images).</summary>
    public int Prefetch { get; init; } = 2;
    public long Seed { get; init; }
    public int Rank { get; init; }
    public int WorldSize { get; init; } = 1;
    /// <summary>Batch landscape and portrait images apart (mmdetection's GroupSampler); see <see cref="GroupBatchSampler"/>.</summary>
    public bool GroupByAspectRatio { get; init; } = true;
    /// <summary>Undecodable images skipped (with a warning) before training stops with an error.</summary>
    public int MaxBadImages { get; init; } = 10;
}

/// <summary>Parallel decode + transform with bounded prefetch. Batches come out in plan order; each sample's
/// augmentation depends only on (seed, epoch, dataset index), so the stream is identical for any worker count and
/// timing, and <see cref="Epoch(int, int)"/> with a start iteration yields exactly the tail of the full epoch (exact
/// resume). Workers produce plain arrays (<see cref="TransformedSample"/>); tensors of the batch are made on the
/// consuming thread by <see cref="BatchCollator"/>, so they belong to that thread's dispose scope.</summary>
internal sealed class DetectionLoader
{
    readonly IDetectionDataset _dataset;

    /// <summary>The split read (evaluation plots find its image files).</summary>
    internal IDetectionDataset Dataset => _dataset;
    readonly DetectionTransform _transform;
    readonly BatchCollator _collator;
    readonly LoaderOptions _options;
    readonly bool _training;
    readonly HostTargets? _targets;
    readonly ILogger _log;
    readonly ConcurrentDictionary<long, (string File, long Started)> _inFlight = new();
    long _loads;
    int _badImages;

    DetectionLoader(IDetectionDataset dataset, DetectionTransform transform, BatchCollator collator, LoaderOptions options, bool training,
        ILogger? log, HostTargets? targets = null)
    {
        _targets = targets;
        _dataset = dataset;
        _transform = transform;
        _collator = collator;
        _options = options;
        _training = training;
        _log = log ?? Log.Logger;
        if (options.Workers < 0) throw new GflConfigException($"workers must be >= 0 (got {options.Workers})");
        if (options.Prefetch < 1) throw new GflConfigException($"prefetch must be >= 1 (got {options.Prefetch})");
    }

    public static DetectionLoader ForTraining(IDetectionDataset dataset, LoaderOptions options, torch.Device device,
        MultiScale? scales = null, ILogger? log = null, HostTargets? targets = null) =>
        new(dataset, DetectionTransform.Train(scales), new BatchCollator(new Normalize(), new Pad(), device), options, true, log, targets);

    public static DetectionLoader ForEvaluation(IDetectionDataset dataset, LoaderOptions options, torch.Device device,
        ResizeScale? scale = null, ILogger? log = null) =>
        new(dataset, DetectionTransform.Eval(scale), new BatchCollator(new Normalize(), new Pad(), device), options, false, log);

    /// <summary>A loader with an explicit transform and collator (the configuration path:
    /// <see cref="DataPipelineFactory"/>).</summary>
    /// <param name="targets">when given, every batch carries its training targets (<see cref="DetectionBatch.Targets"/>),
    /// built by the worker that finishes the batch's last image, ahead of the step (issue 21).</param>
    public static DetectionLoader Create(IDetectionDataset dataset, DetectionTransform transform, BatchCollator collator,
        LoaderOptions options, bool training, ILogger? log = null, HostTargets? targets = null) =>
        new(dataset, transform, collator, options, training, log, targets);

    public int BadImages => _badImages;

    /// <summary>The images being decoded and transformed right now, each with its file and how long it has taken, longest
    /// first: what a hung iteration was waiting for (the watchdog reports it).</summary>
    public IReadOnlyList<(string File, TimeSpan Elapsed)> InFlight()
    {
        long now = System.Diagnostics.Stopwatch.GetTimestamp();
        return _inFlight.Values.Select(v => (v.File, System.Diagnostics.Stopwatch.GetElapsedTime(v.Started, now)))
            .OrderByDescending(v => v.Item2).ToList();
    }

    /// <summary>The batch plan of an epoch for this rank (dataset indices).</summary>
    public IReadOnlyList<int[]> Plan(int epoch) => _training
        ? GroupBatchSampler.TrainBatches(_dataset.Entries, _options.BatchSize, _options.Seed, epoch, _options.Rank, _options.WorldSize,
            groupByAspectRatio: _options.GroupByAspectRatio)
        : GroupBatchSampler.EvalBatches(_dataset.Count, _options.BatchSize, _options.Rank, _options.WorldSize);

    public int BatchesPerEpoch => Plan(0).Count;

    /// <summary>The batches of <paramref name="epoch"/> from <paramref name="startIteration"/> on. Dispose each batch
    /// (or let the training step's dispose scope do it). Stopping early cancels the workers.</summary>
    public IEnumerable<DetectionBatch> Epoch(int epoch, int startIteration = 0)
    {
        var plan = Plan(epoch);
        if (startIteration < 0 || startIteration > plan.Count)
            throw new GflRuntimeException($"start iteration {startIteration} is outside epoch {epoch} ({plan.Count} iterations)");
        var batches = plan.Skip(startIteration).ToList();
        return _options.Workers == 0 ? Sequential(batches, epoch) : Parallel(batches, epoch);
    }

    IEnumerable<DetectionBatch> Sequential(List<int[]> batches, int epoch)
    {
        foreach (var b in batches)
        {
            var samples = b.Select(i => Load(i, epoch)).ToList();
            var targets = Targets(samples);
            DetectionBatch? batch = null;
            try
            {
                var kept = Keep(samples, b);
                if (kept.Count > 0) batch = Collate(kept, targets);
            }
            finally { targets?.Targets?.Dispose(); }   // the batch has its own tensors now
            if (batch is not null) yield return batch;
        }
    }

    IEnumerable<DetectionBatch> Parallel(List<int[]> batches, int epoch)
    {
        using var cts = new CancellationTokenSource();
        var results = new SampleResult?[batches.Count][];
        var targets = new TargetsResult?[batches.Count];
        var pending = new int[batches.Count];
        var done = new CountdownEvent[batches.Count];
        for (int b = 0; b < batches.Count; b++)
        {
            results[b] = new SampleResult?[batches[b].Length];
            pending[b] = batches[b].Length;
            done[b] = new CountdownEvent(batches[b].Length);
        }
        using var budget = new SemaphoreSlim(_options.Prefetch);
        using var work = new BlockingCollection<(int Batch, int Slot)>();
        var feeder = Task.Run(() =>
        {
            try
            {
                for (int b = 0; b < batches.Count; b++)
                {
                    budget.Wait(cts.Token);   // at most Prefetch batches in flight or waiting to be consumed
                    for (int j = 0; j < batches[b].Length; j++) work.Add((b, j), cts.Token);
                }
            }
            catch (OperationCanceledException) { }
            finally { work.CompleteAdding(); }
        });
        var workers = Enumerable.Range(0, _options.Workers).Select(_ => Task.Factory.StartNew(() =>
        {
            // One OpenMP thread for the tensor code of this worker (the targets built ahead): the workers are the
            // parallelism, as in PyTorch's DataLoader.
            if (_targets is not null) OpenMpThreads.LimitCallingThread(1);
            try
            {
                foreach (var (b, j) in work.GetConsumingEnumerable(cts.Token))
                {
                    results[b][j] = Load(batches[b][j], epoch);
                    // The worker that finishes a batch's last image builds its targets before signalling it, so they
                    // are ready when the consumer sees the batch complete.
                    if (Interlocked.Decrement(ref pending[b]) == 0) targets[b] = Targets(results[b]);
                    done[b].Signal();
                }
            }
            catch (OperationCanceledException) { }
        }, cts.Token, TaskCreationOptions.LongRunning, TaskScheduler.Default)).ToArray();

        try
        {
            for (int b = 0; b < batches.Count; b++)
            {
                WaitHandle.WaitAny([done[b].WaitHandle, cts.Token.WaitHandle]);
                var batchTargets = targets[b];
                targets[b] = null;
                DetectionBatch? batch = null;
                try
                {
                    var kept = Keep(results[b]!, batches[b]);
                    results[b] = null!;
                    budget.Release();
                    if (kept.Count > 0) batch = Collate(kept, batchTargets);
                }
                finally { batchTargets?.Targets?.Dispose(); }   // the batch has its own tensors now
                if (batch is not null) yield return batch;
            }
        }
        finally
        {
            cts.Cancel();
            try { Task.WaitAll([feeder, .. workers]); } catch (AggregateException) { }
            foreach (var d in done) d.Dispose();
            foreach (var t in targets) t?.Targets?.Dispose();   // built for batches never consumed
        }
    }

    /// <summary>The samples' pixel arrays are only read by the collator (it copies them into the batch), so they go
    /// back to the pool for the next images.</summary>
    DetectionBatch Collate(List<TransformedSample> samples, TargetsResult? targets)
    {
        if (targets?.Error is { } error) throw new GflRuntimeException($"building the batch's training targets: {error.Message}", error);
        var batch = _collator.Collate(samples, targets?.Targets);
        foreach (var s in samples) PixelBufferPool.Return(s.Pixels);
        return batch;
    }

    sealed record SampleResult(TransformedSample? Sample, Exception? Error);

    sealed record TargetsResult(HostBatchTargets? Targets, Exception? Error);

    /// <summary>The training targets of a batch's decoded samples (those <see cref="Keep"/> keeps when it does not throw),
    /// or null without a target builder or samples.</summary>
    TargetsResult? Targets(IReadOnlyList<SampleResult?> samples)
    {
        if (_targets is null) return null;
        var decoded = samples.Where(r => r?.Sample is not null).Select(r => r!.Sample!).ToList();
        if (decoded.Count == 0) return null;
        try { return new TargetsResult(_collator.Targets(_targets, decoded), null); }
        catch (Exception e) { return new TargetsResult(null, e); }
    }

    SampleResult Load(int index, int epoch)
    {
        var entry = _dataset.Entries[index];
        long ticket = Interlocked.Increment(ref _loads);
        var path = _dataset.PathOf(entry);
        _inFlight[ticket] = (path, System.Diagnostics.Stopwatch.GetTimestamp());
        try
        {
            var image = ImageDecoder.Decode(path);
            var sample = _transform.Apply(image, entry, SampleRng.For(_options.Seed, epoch, index));
            if (!ReferenceEquals(sample.Pixels, image.Pixels)) PixelBufferPool.Return(image.Pixels);
            return new SampleResult(sample, null);
        }
        catch (ImageDecodeException e) { return new SampleResult(null, e); }
        catch (Exception e) { return new SampleResult(null, new GflRuntimeException($"image {entry.FileName} (id {entry.ImageId}): {e.Message}", e)); }
        finally { _inFlight.TryRemove(ticket, out _); }
    }

    /// <summary>Consumer-side handling of failed samples: during training a bad image is skipped with a warning
    /// until <see cref="LoaderOptions.MaxBadImages"/>; in evaluation every image counts, so it is an error.</summary>
    List<TransformedSample> Keep(IReadOnlyList<SampleResult?> samples, int[] indices)
    {
        var kept = new List<TransformedSample>(samples.Count);
        for (int i = 0; i < samples.Count; i++)
        {
            var r = samples[i] ?? throw new InvalidOperationException("loader worker stopped early");
            if (r.Sample != null) { kept.Add(r.Sample); continue; }
            if (!_training || r.Error is not ImageDecodeException)
                throw r.Error as GflRuntimeException ?? new GflRuntimeException(r.Error!.Message, r.Error);
            int n = Interlocked.Increment(ref _badImages);
            if (n > _options.MaxBadImages)
                throw new GflRuntimeException($"too many bad images ({n} > max {_options.MaxBadImages}); last: {r.Error.Message}. " +
                    "Run 'gfl data check' to list them all.", r.Error);
            _log.Warning("skipping image {Index}: {Message} ({Count}/{Max} bad images allowed)", indices[i], r.Error.Message, n, _options.MaxBadImages);
        }
        return kept;
    }
}
