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
    public static Tensor BoxAvgFactor(Tensor sum, Runtime.ICollective? ranks) => ranks is { WorldSize: > 1 }
        ? tensor((float)Math.Max(ranks.AllReduceMean([sum.item<float>()])[0], 1.0 / ranks.WorldSize), dtype: ScalarType.Float32, device: sum.device)
        : sum.clamp_min(1);
}
