using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using GflTrainer.Coco;
using GflTrainer.Reporting;
using Serilog;

namespace GflTrainer.Training;

/// <summary>The machine-readable record of a run in its work directory: <c>log.jsonl</c> (one line per
/// <c>log_interval</c> iterations: interval means of the loss terms by name, lr, timings, memory),
/// <c>metrics.jsonl</c> (one line per evaluation) and the same scalars in TensorBoard (<c>train/loss_*</c>,
/// <c>val/bbox_AP*</c>). The plots and the resume logic read these files. Only rank 0 of a data-parallel run keeps it
/// (<see cref="Disabled"/> on the others).</summary>
internal sealed class RunLog
{
    private readonly string _workDir;
    private readonly ILogger _log;
    private readonly TorchSharp.Modules.SummaryWriter? _tensorboard;
    private readonly bool _writes = true;

    /// <summary>A log that writes nothing (data-parallel ranks other than 0).</summary>
    public static RunLog Disabled(string workDir, ILogger log) => new(workDir, log, writes: false);

    public RunLog(string workDir, ILogger log) : this(workDir, log, writes: true) { }

    private RunLog(string workDir, ILogger log, bool writes)
    {
        _workDir = workDir; _log = log; _writes = writes;
        if (!writes) return;
        try { _tensorboard = TorchSharp.torch.utils.tensorboard.SummaryWriter(Path.Combine(workDir, "tensorboard")); }
        catch (Exception e) { _log.Warning("TensorBoard logging disabled: {Message}", e.Message); }
    }

    string IterationLog => Path.Combine(_workDir, "log.jsonl");
    string MetricsLog => Path.Combine(_workDir, "metrics.jsonl");

    /// <summary>On resume: drops <c>log.jsonl</c> lines of iterations after <paramref name="iteration"/> (they are
    /// about to be redone) and returns the best bbox AP of <c>metrics.jsonl</c> (an evaluation may have finished after
    /// the checkpoint was written), NaN if none.</summary>
    public double ResumeAt(long iteration)
    {
        double best = double.NaN;
        if (!_writes) return best;
        foreach (var row in TrainingPlots.ReadJsonLines(MetricsLog))
            if (row.TryGetValue("bbox.AP", out var ap) && (double.IsNaN(best) || ap > best)) best = ap;
        if (File.Exists(IterationLog))
        {
            var keep = File.ReadAllLines(IterationLog).Where(line =>
            {
                try { using var d = JsonDocument.Parse(line); return d.RootElement.GetProperty("iter").GetInt64() <= iteration; }
                catch (Exception) { return false; }
            }).ToList();
            var tmp = IterationLog + ".tmp";
            File.WriteAllLines(tmp, keep);
            File.Move(tmp, IterationLog, overwrite: true);
        }
        return best;
    }

    /// <summary>One <c>log.jsonl</c> line and its TensorBoard scalars.</summary>
    public void WriteTrain(TrainState state, int itersPerEpoch, double lr, LossWindow.Summary w)
    {
        if (!_writes) return;
        using var proc = Process.GetCurrentProcess();
        var rec = new JsonObject
        {
            ["epoch"] = state.Epoch + 1,
            ["iter"] = state.Iteration,
            ["iter_in_epoch"] = state.IterInEpoch,
            ["iters_per_epoch"] = itersPerEpoch,
            ["lr"] = lr,
            ["loss"] = w.Losses.Total,
        };
        foreach (var term in w.Losses.Terms) rec[term.Name] = term.Value;
        rec["time"] = w.Time;
        rec["data_time"] = w.DataTime;
        rec["memory_mb"] = proc.WorkingSet64 / (1024.0 * 1024.0);
        File.AppendAllText(IterationLog, rec.ToJsonString() + "\n");
        if (_tensorboard is not null)
        {
            int step = (int)Math.Min(state.Iteration, int.MaxValue);
            _tensorboard.add_scalar("train/loss", (float)w.Losses.Total, step);
            foreach (var term in w.Losses.Terms) _tensorboard.add_scalar($"train/{term.Name}", (float)term.Value, step);
            _tensorboard.add_scalar("train/lr", (float)lr, step);
        }
        if (w.Time > 0 && w.DataTime / w.Time > 0.05)
            _log.Debug("data loading took {Pct:P0} of step time; consider more data.workers", w.DataTime / w.Time);
    }

    /// <summary>One <c>metrics.jsonl</c> line (bbox metrics and per-category AP) and the AP scalars.</summary>
    public void WriteEval(int epoch, long iteration, CocoMetrics metrics)
    {
        if (!_writes) return;
        var doc = JsonNode.Parse(metrics.ToJson())!;
        var rec = new JsonObject
        {
            ["epoch"] = epoch, ["iter"] = iteration,
            ["bbox"] = doc["bbox"]!.DeepClone(), ["per_category"] = doc["per_category"]?.DeepClone(),
        };
        File.AppendAllText(MetricsLog, rec.ToJsonString() + "\n");
        if (_tensorboard is not null)
        {
            _tensorboard.add_scalar("val/bbox_AP", (float)metrics.AP, epoch);
            _tensorboard.add_scalar("val/bbox_AP50", (float)metrics.AP50, epoch);
        }
    }

    /// <summary>Renders the loss and AP plots from the logs, then rebuilds report.html from them and the latest
    /// evaluation's plots; a failure is a warning, never the end of the run.</summary>
    public void RenderPlotsAndReport()
    {
        if (!_writes) return;
        try { TrainingPlots.Render(_workDir); }
        catch (Exception e) { _log.Warning("plots not rendered: {Message}", e.Message); }
        try { RunReport.Write(_workDir); }
        catch (Exception e) { _log.Warning("{Report} not written: {Message}", RunReport.FileName, e.Message); }
    }
}
