namespace GflTrainer.Training;

/// <summary>A gradient became NaN or Inf while the loss was finite (e.g. a sqrt or division at 0 in a backward
/// pass): the run stops before the optimizer step, as for <see cref="NonFiniteLossException"/> (same diagnostic
/// checkpoint, same exit code 1), instead of letting SGD write NaN into the weights.</summary>
public sealed class NonFiniteGradientException(long iteration, int epoch, NonFiniteGradient bad, string? diagnosticCheckpoint)
    : GflRuntimeException($"non-finite gradient at iteration {iteration} (epoch {epoch}): {bad.Parameter} has " +
        $"{bad.NonFinite} non-finite of {bad.Numel} values ({bad.Nan} NaN, {bad.NonFinite - bad.Nan} Inf)" +
        (bad.ParametersAffected > 1 ? $"; {bad.ParametersAffected - 1} later parameters also have non-finite gradients" : "") +
        "; the optimizer step was not applied" +
        (diagnosticCheckpoint is null ? "" : $"; weights before this step saved to {diagnosticCheckpoint}") +
        ". Try a lower train.optimizer.lr, a longer train.schedule.warmup_iters or train.grad_clip.max_norm (e.g. 35)")
{
    public long Iteration { get; } = iteration;
    public NonFiniteGradient Gradient { get; } = bad;
}
