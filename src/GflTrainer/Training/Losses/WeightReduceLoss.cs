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
}
