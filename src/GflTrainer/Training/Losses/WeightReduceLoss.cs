using static TorchSharp.torch;

namespace GflTrainer.Training.Losses;

/// <summary>mmdetection <c>weight_reduce_loss</c> with reduction "mean" and an avg_factor.</summary>
internal static class WeightReduceLoss
{
    /// <summary>torch.finfo(float32).eps, which mmdetection adds (in double) to every avg_factor so that a zero factor
    /// cannot divide by zero.</summary>
    public const double Float32Eps = 1.1920928955078125e-07;

    /// <summary>sum(loss) / (avgFactor + eps).</summary>
    public static Tensor Mean(Tensor weightedLoss, double avgFactor) => weightedLoss.sum() / (avgFactor + Float32Eps);

    /// <summary>The box losses' divisor from this rank's (0-d, float32) sum of positive weights: max(sum, 1) in one
    /// process, kept on the device (no host sync; mmdetection reads it with <c>.item()</c>, the same float32 value); over
    /// W ranks the mean of the ranks' sums clamped at 1/W, i.e. the global batch's sum clamped at 1, so W ranks train
    /// exactly as one process on their union (mmdetection clamps the mean at 1 instead, which differs only while the
    /// positives' weights of a global batch sum to less than W, in the first iterations). Dividing by it gives the
    /// same float32 results as dividing by the number.</summary>
    public static Tensor BoxAvgFactor(Tensor sum, Runtime.ICollective? ranks)
    {
        if (ranks is not { WorldSize: > 1 }) return sum.clamp_min(1);
        // The mean in float64 on the device (as the host numbers were averaged), clamped, then float32: no host read.
        var mean = sum.detach().to(ScalarType.Float64);
        ranks.AllReduceMean([mean]);
        return mean.clamp_min(1.0 / ranks.WorldSize).to(ScalarType.Float32);
    }

    /// <summary>A host normaliser as the 0-d float64 tensor the losses take: a fill on the device, so no host-to-device
    /// copy (one would wait for the device).</summary>
    public static Tensor AvgFactorOn(double avgFactor, Device device) => full(Array.Empty<long>(), avgFactor, ScalarType.Float64, device);

    /// <summary>The classification normaliser of <paramref name="ranks"/>: this rank's <paramref name="avgFactor"/> as a
    /// 0-d float64 tensor, averaged over the ranks on the device (mmdetection's reduce_mean of avg_factor).</summary>
    public static Tensor AvgFactorOf(double avgFactor, Device device, Runtime.ICollective? ranks)
    {
        var t = AvgFactorOn(avgFactor, device);
        if (ranks is { WorldSize: > 1 }) ranks.AllReduceMean([t]);
        return t;
    }

    /// <summary>The classification normaliser of <paramref name="targets"/> (<see cref="Targets.GflTargets.ClassificationAvgFactor"/>)
    /// on <paramref name="device"/>, averaged over <paramref name="ranks"/>: the tensor made with targets built ahead (a copy
    /// when ranks average it in place), else a fill of the number.</summary>
    public static Tensor AvgFactorOf(Targets.GflTargets targets, Device device, Runtime.ICollective? ranks)
    {
        if (targets.ClassificationNormaliser is not { } made) return AvgFactorOf(targets.ClassificationAvgFactor, device, ranks);
        if (ranks is not { WorldSize: > 1 }) return made.alias();
        var t = made.clone();
        ranks.AllReduceMean([t]);
        return t;
    }

    /// <summary>lossWeight / (avgFactor + eps) computed in float64 and cast to <paramref name="dtype"/>: what libtorch
    /// multiplies a <paramref name="dtype"/> tensor by when given the same value as a host number.</summary>
    public static Tensor Scale(double lossWeight, Tensor avgFactor, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        // A true division (TorchSharp's number / tensor multiplies by the reciprocal, which can round differently).
        var weight = full(Array.Empty<long>(), lossWeight, ScalarType.Float64, avgFactor.device);
        return weight.div(avgFactor.to(ScalarType.Float64) + Float32Eps).to(dtype).MoveToOuterDisposeScope();
    }

    /// <summary>avgFactor + eps in <paramref name="dtype"/>, the divisor a host number would become.</summary>
    public static Tensor Divisor(Tensor avgFactor, ScalarType dtype) => (avgFactor.to(ScalarType.Float64) + Float32Eps).to(dtype);
}
