namespace GflTrainer.Training;

/// <summary>A loss term became NaN or Inf: the run stops (after writing a diagnostic checkpoint) rather than
/// silently training on garbage, as mmdetection users otherwise discover hours later.</summary>
public sealed class NonFiniteLossException(long iteration, int epoch, string terms, string? diagnosticCheckpoint)
    : GflRuntimeException($"non-finite loss at iteration {iteration} (epoch {epoch}): {terms}" +
        (diagnosticCheckpoint is null ? "" : $"; weights before this step saved to {diagnosticCheckpoint}") +
        ". Try a lower train.optimizer.lr, a longer train.schedule.warmup_iters or train.grad_clip.max_norm (e.g. 35)")
{
    public long Iteration { get; } = iteration;
}
