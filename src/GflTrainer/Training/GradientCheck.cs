using TorchSharp;
using static TorchSharp.torch;

namespace GflTrainer.Training;

/// <summary>The first parameter (in named_parameters order) whose gradient holds NaN or Inf values.</summary>
/// <param name="Parameter">its state-dict name as in checkpoints, e.g. <c>bbox_head.gfl_cls.weight</c>.</param>
/// <param name="NonFinite">non-finite values in that gradient (<paramref name="Nan"/> of them NaN, the rest ±Inf).</param>
/// <param name="Numel">values in that gradient.</param>
/// <param name="ParametersAffected">parameters with at least one non-finite gradient value, this one included.</param>
public sealed record NonFiniteGradient(string Parameter, long NonFinite, long Nan, long Numel, int ParametersAffected);

/// <summary>
/// Is every gradient finite? One fused reduction over all gradients and one host sync per step, so it can run on
/// every step (GPU included: nothing but the single boolean leaves the device). Used by the fp16
/// <see cref="LossScaler"/> (overflow: skip the step) and by <see cref="OptimizerStep"/> in fp32/bf16 (a non-finite
/// gradient there stops the run). Which parameter is at fault is worked out only after the fused check failed.
/// </summary>
public static class GradientCheck
{
    /// <summary>True when every value of every tensor (the gradients: in training, the optimizer's one flat gradient
    /// buffer) is finite. Exact.</summary>
    /// <remarks>The normal path: the sum of each tensor (one allocation-free reduction each), stacked, one
    /// isfinite-all and one <c>item</c>. A NaN or ±Inf anywhere makes its tensor's sum NaN or Inf. The converse
    /// needs care: finite values can overflow a float sum (beyond 3.4e38), so a non-finite sum is confirmed value by
    /// value before the answer is no. Sums were chosen over max and min (propagate NaN, cannot overflow) and over the
    /// loss scaler's former abs().max() because they measured 2-4x faster (docs/STATUS.md, "Gradient check").</remarks>
    public static bool AllFiniteValues(IReadOnlyList<Tensor> tensors)
    {
        using var scope = NewDisposeScope();
        return SumsFinite(tensors).item<bool>() || Confirm(tensors);
    }

    /// <summary>The fast part of <see cref="AllFiniteValues"/> left on the device: a 0-d bool, true when every tensor's sum
    /// is finite (then every value is). False needs <see cref="Confirm"/>. For reading it with other values in one
    /// transfer (<see cref="OptimizerStep"/> on a GPU reads it with the loss).</summary>
    public static Tensor SumsFinite(IReadOnlyList<Tensor> tensors)
    {
        using var noGrad = no_grad();
        if (tensors.Count == 0) return tensor(true);
        var sums = tensors.Count == 1 ? tensors[0].sum() : stack(tensors.Select(t => t.sum()).ToArray());
        return sums.isfinite().all();
    }

    /// <summary>After <see cref="SumsFinite"/> said no (rare: a real non-finite value, or finite values whose sum
    /// overflows float32): value by value, per tensor.</summary>
    public static bool Confirm(IReadOnlyList<Tensor> tensors)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        foreach (var t in tensors)
            if (!t.isfinite().all().item<bool>()) return false;
        return true;
    }

    /// <summary>The slow path, after <see cref="AllFiniteValues"/> said no: one count per parameter, in the given order
    /// (the model's named_parameters order). Null when every gradient is finite.</summary>
    public static NonFiniteGradient? FindFirstNonFinite(IEnumerable<(string Name, Tensor Param)> parameters) =>
        FirstNonFinite(parameters.Select(p => (p.Name, (Tensor?)p.Param.grad)));

    /// <summary><see cref="FindFirstNonFinite"/> over gradients given directly (null: the parameter has none).</summary>
    public static NonFiniteGradient? FirstNonFinite(IEnumerable<(string Name, Tensor? Gradient)> gradients)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        NonFiniteGradient? first = null;
        int affected = 0;
        foreach (var (name, g) in gradients)
        {
            if (g is null) continue;
            long bad = g.isfinite().logical_not().sum().item<long>();
            if (bad == 0) continue;
            affected++;
            first ??= new NonFiniteGradient(name, bad, g.isnan().sum().item<long>(), g.numel(), 0);
        }
        return first is null ? null : first with { ParametersAffected = affected };
    }
}
