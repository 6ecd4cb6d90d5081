using GflTrainer.Training.Losses;
using static TorchSharp.torch;

namespace GflTrainer.Training;

/// <summary>One step of <see cref="TrainStep.RunDeferred"/> as read back.</summary>
/// <param name="Iteration">1-based iteration of the step.</param>
/// <param name="Epoch">0-based epoch.</param>
/// <param name="IterInEpoch">1-based position in the epoch.</param>
/// <param name="Losses">its loss values (averaged over the ranks).</param>
/// <param name="GradientsFinite">every gradient was finite.</param>
/// <param name="Applied">the update was made (false: a non-finite loss or gradient, or the run was halted before).</param>
/// <param name="Halted">the run is halted: by this step when the previous one was not (a non-finite loss, or in
/// fp32/bf16 gradient), else by an earlier one. A step neither applied nor halted is an fp16 overflow, skipped.</param>
/// <param name="DataSeconds">the time spent waiting for its batch.</param>
internal sealed record DeferredStep(long Iteration, int Epoch, long IterInEpoch, double LearningRate, LossScalars Losses,
    bool GradientsFinite, bool Applied, bool Halted, double DataSeconds);

/// <summary>
/// The loss rows of the steps run since the last read (<c>runtime.loss_reads: log_interval</c>), read back in one
/// device-to-host transfer (issue 21: "no device-to-host syncs inside the step except the one loss read per logging
/// interval"). Between two reads the host only queues work, so on a GPU it runs ahead of the device instead of waiting
/// for it at every step; the trainer reads at every log line, at the end of each epoch and before it stops.
/// </summary>
internal sealed class DeferredLosses : IDisposable
{
    private readonly List<(Tensor Row, long Iteration, int Epoch, long IterInEpoch, double Lr, double DataSeconds)> _pending = [];

    public int Count => _pending.Count;

    /// <summary>Takes <paramref name="row"/> (<see cref="TrainStep.RunDeferred"/>'s, owned from now on) of the step that
    /// made <paramref name="iteration"/> (1-based).</summary>
    public void Add(Tensor row, long iteration, int epoch, long iterInEpoch, double lr, double dataSeconds) =>
        _pending.Add((row, iteration, epoch, iterInEpoch, lr, dataSeconds));

    /// <summary>Every pending step, in order, with one transfer; empties the list.</summary>
    /// <param name="termNames">the loss terms of the rows, in order (<see cref="TrainStep.LossTermNames"/>).</param>
    public IReadOnlyList<DeferredStep> Read(IReadOnlyList<string> termNames)
    {
        if (_pending.Count == 0) return [];
        double[] v;
        using (var stacked = stack(_pending.Select(p => p.Row).ToList(), 0).cpu())
            v = stacked.data<double>().ToArray();
        int width = termNames.Count + 4;
        if (v.Length != width * _pending.Count)
            throw new InvalidOperationException($"deferred loss rows of {v.Length / _pending.Count} values, expected {width}");
        var steps = new List<DeferredStep>(_pending.Count);
        for (int i = 0; i < _pending.Count; i++)
        {
            var (losses, flags) = LossScalars.FromRow(termNames, v[(i * width)..((i + 1) * width)]);
            var p = _pending[i];
            steps.Add(new DeferredStep(p.Iteration, p.Epoch, p.IterInEpoch, p.Lr, losses, flags[0] != 0, flags[1] != 0, flags[2] != 0, p.DataSeconds));
        }
        Dispose();
        return steps;
    }

    public void Dispose()
    {
        foreach (var p in _pending) p.Row.Dispose();
        _pending.Clear();
    }
}
