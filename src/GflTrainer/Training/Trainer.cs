using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using GflTrainer.Checkpoints;
using GflTrainer.Config;
using GflTrainer.Data;
using GflTrainer.Evaluation;
using GflTrainer.Model;
using GflTrainer.Reporting;
using GflTrainer.Training.Losses;
using Serilog;
using TorchSharp;
using static TorchSharp.torch;

namespace GflTrainer.Training;

/// <summary>
/// The training loop of <c>gfl train</c>: SGD with warm-up and decay computed from the iteration, one dispose scope per
/// step, logging (train.log, log.jsonl, TensorBoard, plots), checkpoints (last / epoch_N / best), evaluation every
/// <c>eval_interval</c> epochs, exact resume, stop-on-signal after the current iteration, and a hard stop on a
/// non-finite loss.
/// </summary>
internal sealed class Trainer : IDisposable
{
    private readonly GflConfig _cfg;
    private readonly Device _device;
    private readonly string _workDir;
    private readonly ILogger _log;
    private readonly GflDetector _model;
    private readonly GflLoss _loss;
    private readonly GflPostprocessor _post;
    private readonly Sgd _sgd;
    private readonly LrSchedule _schedule;
    private readonly CheckpointStore _store;
    private readonly ScalarType? _ampType;
    private readonly LossScaler? _scaler;
    private readonly OptimizerStep _update;
    private readonly DetectionLoader _trainLoader;
    private readonly DetectionLoader? _valLoader;
    private readonly CocoGroundTruth? _valGt;
    private readonly CategoryMap _categories;
    private readonly string _configYaml;
    private readonly long _seed;
    private readonly IReadOnlyList<TorchSharp.Modules.Parameter> _trainableParams;
    private readonly TorchSharp.Modules.SummaryWriter? _tensorboard;

    private int _epoch;            // 0-based epoch in progress
    private long _iteration;       // global iterations completed
    private long _iterInEpoch;     // batches of _epoch consumed
    private double _bestAp = double.NaN;
    private double? _lastAp, _lastAp50;

    public Trainer(GflConfig cfg, string configYaml, Device device, string workDir, ILogger log,
        GflDetector model, CocoDataset train, CocoDataset? val, CocoGroundTruth? valGt, long seed, LoadedCheckpoint? resume,
        Action<IReadOnlyList<(string Name, Tensor Param)>>? afterBackwardForTests = null)
    {
        _cfg = cfg; _configYaml = configYaml; _device = device; _workDir = workDir; _log = log; _model = model;
        _categories = train.Categories; _valGt = valGt; _seed = seed;
        _loss = DetectorFactory.CreateLoss(cfg.Model);
        _post = DetectorFactory.CreatePostprocessor(cfg.Model);
        _store = new CheckpointStore(Path.Combine(workDir, "checkpoints"));

        var named = model.named_parameters().Where(p => p.parameter.requires_grad)
            .Select(p => (p.name, (Tensor)p.parameter)).ToList();
        _trainableParams = model.parameters().Where(p => p.requires_grad).ToList();
        var t = cfg.Train;
        double lr = t.Optimizer.Lr;
        if (t.AutoScaleLr.Enabled) lr *= (double)cfg.Data.BatchSize / t.AutoScaleLr.BaseBatchSize;
        if (t.Optimizer.Nesterov)
            throw new GflConfigException("train.optimizer.nesterov: Nesterov momentum is not implemented (the reference uses plain momentum)");
        _sgd = new Sgd(named, lr, t.Optimizer.Momentum, t.Optimizer.WeightDecay);

        var loaderOptions = new LoaderOptions
        {
            BatchSize = cfg.Data.BatchSize, Workers = cfg.Data.Workers, Prefetch = cfg.Data.Prefetch, Seed = seed,
            MaxBadImages = cfg.Data.MaxBadImages,
        };
        _trainLoader = DataPipelineFactory.CreateTrainLoader(cfg.Data, train, loaderOptions, device, log);
        if (val is not null)
            _valLoader = DataPipelineFactory.CreateEvalLoader(cfg.Data, val,
                loaderOptions with { BatchSize = cfg.Data.ValBatchSize }, device, log);

        int itersPerEpoch = _trainLoader.BatchesPerEpoch;
        if (itersPerEpoch == 0)
            throw new GflConfigException($"data.train: no training batches ({train.Count} usable images, batch_size {cfg.Data.BatchSize})");
        var s = t.Schedule;
        _schedule = new LrSchedule(lr, s.Warmup == WarmupKind.None ? 0 : s.WarmupIters, s.WarmupRatio,
            s.Policy == Config.LrPolicy.Cosine ? LrDecay.Cosine : LrDecay.Step, s.Steps, s.Gamma, s.ByEpoch,
            (long)itersPerEpoch * t.Epochs, s.MinLr / lr, constantWarmup: s.Warmup == WarmupKind.Constant);

        _ampType = t.Amp switch { AmpMode.Bf16 => ScalarType.BFloat16, AmpMode.Fp16 => ScalarType.Float16, _ => null };
        if (t.Amp == AmpMode.Fp16) _scaler = new LossScaler();
        _update = new OptimizerStep(_sgd, _scaler, t.GradClip) { AfterBackward = afterBackwardForTests };

        if (resume is not null) Restore(resume);

        try { _tensorboard = torch.utils.tensorboard.SummaryWriter(Path.Combine(workDir, "tensorboard")); }
        catch (Exception e) { _log.Warning("TensorBoard logging disabled: {Message}", e.Message); }
    }

    private void Restore(LoadedCheckpoint ck)
    {
        WeightLoader.Load(_model, ck.Model.Tensors, WeightNameMapping.Identity, strict: true, sourceName: ck.Directory);
        if (ck.Optimizer is not null) _sgd.LoadMomentum(ck.Optimizer.Tensors);
        var m = ck.Meta;
        _epoch = m.Epoch; _iteration = m.Iteration; _iterInEpoch = m.IterInEpoch; _bestAp = m.BestAp;
        if (!string.IsNullOrEmpty(m.TorchRngState))
        {
            using var state = torch.tensor(Convert.FromBase64String(m.TorchRngState), ScalarType.Byte);
            torch.random.set_rng_state(state);
        }
        _scaler?.Restore(m.LossScale, m.LossScaleCleanSteps);
        // best AP also from metrics.jsonl: an evaluation may have finished after `last` was written.
        foreach (var row in TrainingPlots.ReadJsonLines(Path.Combine(_workDir, "metrics.jsonl")))
            if (row.TryGetValue("bbox.AP", out var ap) && (double.IsNaN(_bestAp) || ap > _bestAp)) _bestAp = ap;
        TruncateLogAfter(Path.Combine(_workDir, "log.jsonl"), _iteration);
        _log.Information("resumed from {Dir}: epoch {Epoch}, iteration {Iter} ({InEpoch} batches into the epoch)",
            ck.Directory, _epoch + 1, _iteration, _iterInEpoch);
    }

    /// <summary>Drops log.jsonl lines of iterations after the checkpoint: they are about to be redone.</summary>
    private static void TruncateLogAfter(string path, long iteration)
    {
        if (!File.Exists(path)) return;
        var keep = File.ReadAllLines(path).Where(line =>
        {
            try { using var d = JsonDocument.Parse(line); return d.RootElement.GetProperty("iter").GetInt64() <= iteration; }
            catch (Exception) { return false; }
        }).ToList();
        var tmp = path + ".tmp";
        File.WriteAllLines(tmp, keep);
        File.Move(tmp, path, overwrite: true);
    }

    public TrainResult Run(CancellationToken cancel)
    {
        var t = _cfg.Train;
        int itersPerEpoch = _trainLoader.BatchesPerEpoch;
        long totalIters = (long)itersPerEpoch * t.Epochs;
        _model.train();
        _log.Information("training: {Epochs} epochs x {Iters} iterations, batch {Batch}, {Params:N0} trainable parameters, device {Device}, amp {Amp}, seed {Seed}",
            t.Epochs, itersPerEpoch, _cfg.Data.BatchSize, _trainableParams.Sum(p => p.numel()), _device, t.Amp, _seed);
        var progress = new ProgressReporter(_log, totalIters, t.LogInterval);
        var window = new LossWindow();
        var stepWatch = new Stopwatch();
        string lastCkpt = _store.Find("last") ?? "";

        for (; _epoch < t.Epochs; _epoch++, _iterInEpoch = 0)
        {
            using var batches = _trainLoader.Epoch(_epoch, (int)_iterInEpoch).GetEnumerator();
            while (true)
            {
                stepWatch.Restart();
                if (!batches.MoveNext()) break;
                double dataTime = stepWatch.Elapsed.TotalSeconds;
                double lr;
                LossScalars scalars;
                using (var batch = batches.Current)
                    (scalars, lr) = Step(batch);
                _iteration++; _iterInEpoch++;
                StepBoundaryGc.AfterStep(_iteration);
                double stepTime = stepWatch.Elapsed.TotalSeconds;
                window.Add(scalars, stepTime, dataTime);
                progress.Update(_epoch + 1, t.Epochs, _iterInEpoch, itersPerEpoch, _iteration, scalars, lr, stepTime,
                    _cfg.Data.BatchSize);
                if (_iteration % t.LogInterval == 0 || _iterInEpoch == itersPerEpoch)
                    WriteLogRecord(window.Drain(), lr, itersPerEpoch);
                if (cancel.IsCancellationRequested)
                {
                    lastCkpt = SaveCheckpoint("last", "interrupt", _epoch, _iterInEpoch);
                    _log.Warning("interrupted: saved {Path}; continue with --resume", lastCkpt);
                    return Result(lastCkpt, interrupted: true);
                }
            }
            int done = _epoch + 1;
            if (_trainLoader.BadImages > 0) _log.Warning("{Count} unreadable training images skipped so far", _trainLoader.BadImages);
            // Epoch checkpoints point at the start of the next epoch.
            if (done % t.Checkpoint.Interval == 0 || done == t.Epochs)
            {
                SaveCheckpoint($"epoch_{done}", "epoch", done, 0);
                if (t.Checkpoint.KeepLast is int keep) _store.Prune(keep);
            }
            lastCkpt = SaveCheckpoint("last", done == t.Epochs ? "final" : "epoch", done, 0);
            bool evalNow = t.EvalInterval > 0 ? done % t.EvalInterval == 0 || done == t.Epochs : done == t.Epochs;
            if (evalNow && _valLoader is not null && _valGt is not null)
            {
                Evaluate(done, cancel);
            }
            RenderPlots();
        }
        return Result(lastCkpt, interrupted: false);
    }

    private TrainResult Result(string lastCkpt, bool interrupted) => new(_workDir, _epoch, _iteration, _lastAp, _lastAp50,
        double.IsNaN(_bestAp) ? null : _bestAp, lastCkpt, interrupted);

    private (LossScalars, double) Step(DetectionBatch batch)
    {
        using var scope = NewDisposeScope();
        double lr = _schedule.At(_iteration, _epoch);
        _sgd.LearningRate = lr;
        HeadOutputs outputs;
        using (Autocast.Enter(_ampType, _device))
            outputs = _model.forward(batch.Images);
        if (_ampType is not null)   // losses in fp32, as mmdetection's AmpOptimWrapper leaves them outside autocast's casts
            outputs = new HeadOutputs(outputs.ClassScores.Select(x => x.to(ScalarType.Float32)).ToList(),
                outputs.BoxPredictions.Select(x => x.to(ScalarType.Float32)).ToList());
        var padShapes = batch.Metas.Select(m => (m.PadHeight, m.PadWidth)).ToList();
        // Crowd regions are not passed: mmdetection's ATSS has ignore_iof_thr -1, so anchors on them stay negatives.
        var losses = _loss.Compute(outputs, batch.GtBoxes, batch.GtLabels, padShapes);
        var scalars = losses.ToScalars();  // the one host sync of the step
        if (!double.IsFinite(scalars.Total))
        {
            var terms = $"loss_cls={scalars.Cls}, loss_bbox={scalars.Box}, loss_dfl={scalars.Dfl}";
            throw new NonFiniteLossException(_iteration + 1, _epoch + 1, terms, SaveDiagnosticCheckpoint());
        }
        var outcome = _update.Run(losses.Total);   // backward, gradient check (one more host sync), clip, SGD
        if (outcome.NonFinite is { } bad)
            throw new NonFiniteGradientException(_iteration + 1, _epoch + 1, bad, SaveDiagnosticCheckpoint());
        if (!outcome.Applied)
            _log.Debug("fp16 overflow at iteration {Iter}: step skipped, loss scale now {Scale}", _iteration + 1, _scaler!.Scale);
        return (scalars, lr);
    }

    /// <summary>Saves the weights as they were before the failing step (no update was made) to
    /// <c>checkpoints/nan_iter_N</c>, for a non-finite loss or gradient; null if that fails, which is logged but must
    /// not hide the original error.</summary>
    private string? SaveDiagnosticCheckpoint()
    {
        try { return SaveCheckpoint($"nan_iter_{_iteration + 1}", "nan-diagnostic", _epoch, _iterInEpoch); }
        catch (Exception e) { _log.Error("could not write the diagnostic checkpoint: {Message}", e.Message); return null; }
    }

    private void WriteLogRecord(LossWindow.Summary w, double lr, int itersPerEpoch)
    {
        using var proc = Process.GetCurrentProcess();
        var rec = new JsonObject
        {
            ["epoch"] = _epoch + 1,
            ["iter"] = _iteration,
            ["iter_in_epoch"] = _iterInEpoch,
            ["iters_per_epoch"] = itersPerEpoch,
            ["lr"] = lr,
            ["loss"] = w.Total,
            ["loss_cls"] = w.Cls,
            ["loss_bbox"] = w.Box,
            ["loss_dfl"] = w.Dfl,
            ["time"] = w.Time,
            ["data_time"] = w.DataTime,
            ["memory_mb"] = proc.WorkingSet64 / (1024.0 * 1024.0),
        };
        File.AppendAllText(Path.Combine(_workDir, "log.jsonl"), rec.ToJsonString() + "\n");
        if (_tensorboard is not null)
        {
            int step = (int)Math.Min(_iteration, int.MaxValue);
            _tensorboard.add_scalar("train/loss", (float)w.Total, step);
            _tensorboard.add_scalar("train/loss_cls", (float)w.Cls, step);
            _tensorboard.add_scalar("train/loss_bbox", (float)w.Box, step);
            _tensorboard.add_scalar("train/loss_dfl", (float)w.Dfl, step);
            _tensorboard.add_scalar("train/lr", (float)lr, step);
        }
        if (w.Time > 0 && w.DataTime / w.Time > 0.05)
            _log.Debug("data loading took {Pct:P0} of step time; consider more data.workers", w.DataTime / w.Time);
    }

    private void Evaluate(int epoch, CancellationToken cancel)
    {
        var sw = Stopwatch.StartNew();
        _log.Information("evaluating epoch {Epoch} on {Count} validation images", epoch, _valGt!.ImageIds.Count);
        var dets = DetectionInference.Run(_model, _valLoader!, _post, _categories, cancel: cancel);
        var evalDir = Path.Combine(_workDir, "eval", $"epoch_{epoch}");
        DetectionInference.WriteResults(Path.Combine(evalDir, "detections.json"), dets);
        var metrics = new CocoEvaluator(_valGt).Evaluate(CocoDetections.Create(_valGt, dets, "validation detections"));
        foreach (var line in metrics.SummaryLines) _log.Information("{Line}", line);
        _lastAp = metrics.AP; _lastAp50 = metrics.AP50;

        var json = metrics.ToJson();
        File.WriteAllText(Path.Combine(evalDir, "metrics.json"), json);
        var doc = JsonNode.Parse(json)!;
        var rec = new JsonObject
        {
            ["epoch"] = epoch, ["iter"] = _iteration,
            ["bbox"] = doc["bbox"]!.DeepClone(), ["per_category"] = doc["per_category"]?.DeepClone(),
        };
        File.AppendAllText(Path.Combine(_workDir, "metrics.jsonl"), rec.ToJsonString() + "\n");
        if (_tensorboard is not null)
        {
            _tensorboard.add_scalar("val/bbox_AP", (float)metrics.AP, epoch);
            _tensorboard.add_scalar("val/bbox_AP50", (float)metrics.AP50, epoch);
        }
        _log.Information("epoch {Epoch}: bbox AP {AP:F4}, AP50 {AP50:F4} ({Sec:F1} s)", epoch, metrics.AP, metrics.AP50, sw.Elapsed.TotalSeconds);
        if (double.IsNaN(_bestAp) || metrics.AP > _bestAp)
        {
            _bestAp = metrics.AP;
            var best = SaveCheckpoint("best", "best", epoch, 0);
            _log.Information("new best bbox AP {AP:F4}: {Path}", metrics.AP, best);
        }
    }

    private void RenderPlots()
    {
        try { TrainingPlots.Render(_workDir); }
        catch (Exception e) { _log.Warning("plots not rendered: {Message}", e.Message); }
    }

    /// <param name="epoch">0-based epoch a resumed run continues in.</param>
    /// <param name="iterInEpoch">batches of that epoch already done.</param>
    private string SaveCheckpoint(string name, string reason, int epoch, long iterInEpoch)
    {
        string rng;
        using (var state = torch.random.get_rng_state())
            rng = Convert.ToBase64String(state.data<byte>().ToArray());
        var meta = new TrainingCheckpoint(epoch, _iteration, iterInEpoch, _seed, rng, _scaler?.Scale ?? 1,
            _scaler?.CleanSteps ?? 0,
            _categories.Categories.Select((c, i) => new CheckpointClass(i, c.Id, c.Name)).ToList(),
            _configYaml, _bestAp, reason);
        var modelState = _model.state_dict();
        return _store.Save(name, modelState, _sgd.MomentumBuffers.ToDictionary(kv => kv.Key, kv => kv.Value), meta);
    }

    public void Dispose()
    {
        _sgd.Dispose();
    }
}
