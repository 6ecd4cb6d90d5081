using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace GflTrainer.Training.Losses;

/// <summary>
/// Distribution Focal Loss (Li et al. 2020, eq. 8): for a continuous target y between bins y_l = floor(y) and
/// y_r = y_l + 1, DFL = (y_r − y)·CE(q, y_l) + (y − y_l)·CE(q, y_r). Its minimum puts softmax mass (y_r − y) on y_l and
/// (y − y_l) on y_r, whose expectation is y.
/// </summary>
internal sealed class DistributionFocalLoss(double lossWeight = 0.25)
{
    /// <summary>Reference: 0.25.</summary>
    public double LossWeight { get; } = lossWeight;

    /// <param name="logits">(n, R+1) bin logits of one side each.</param>
    /// <param name="target">(n,) float in [0, R): y_r = floor(y) + 1 must be a valid bin (the encoder clamps to R − 0.1).</param>
    /// <returns>(n,) unweighted loss.</returns>
    public Tensor Elementwise(Tensor logits, Tensor target)
    {
        using var scope = NewDisposeScope();
        // Truncation equals floor for y ≥ 0; weights computed as the reference does (they sum to 1 up to rounding).
        var left = target.to(int64);
        var right = left + 1;
        var weightLeft = right.to(target.dtype) - target;
        var weightRight = target - left.to(target.dtype);
        var loss = F.cross_entropy(logits, left, reduction: nn.Reduction.None) * weightLeft +
                   F.cross_entropy(logits, right, reduction: nn.Reduction.None) * weightRight;
        return loss.MoveToOuterDisposeScope();
    }

    /// <returns>Scalar: lossWeight · Σ(weight · DFL) / (avgFactor + eps); GFL passes avgFactor 4 (four sides).</returns>
    public Tensor Forward(Tensor logits, Tensor target, Tensor weight, double avgFactor)
    {
        using var scope = NewDisposeScope();
        return (LossWeight * WeightReduceLoss.Mean(Elementwise(logits, target) * weight, avgFactor)).MoveToOuterDisposeScope();
    }
}
