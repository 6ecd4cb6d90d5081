using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace GflTrainer.Training.Losses;

/// <summary>
/// Quality Focal Loss (Li et al. 2020, eq. 6) with sigmoid outputs: for logit z, σ = sigmoid(z) and a target
/// t = IoU quality on the gt class of a positive anchor (0 for every other entry),
/// QFL = BCEWithLogits(z, t) · |t − σ|^β. The modulating factor is not detached (as in mmdetection).
/// </summary>
internal sealed class QualityFocalLoss(double beta = 2.0, double lossWeight = 1.0)
{
    /// <summary>β of the modulating factor. Reference: 2.</summary>
    public double Beta { get; } = beta;

    /// <summary>Reference: 1.</summary>
    public double LossWeight { get; } = lossWeight;

    /// <param name="logits">(N, C) classification logits.</param>
    /// <param name="labels">(N,) int64 in 0..C; C is background.</param>
    /// <param name="quality">(N,) float IoU targets, read only on foreground rows.</param>
    /// <returns>(N, C) unweighted loss per entry.</returns>
    public Tensor Elementwise(Tensor logits, Tensor labels, Tensor quality)
    {
        using var scope = NewDisposeScope();
        var numClasses = logits.shape[1];
        // Dense form of mmdetection's "negatives for all, then overwrite the positive entries": same values and
        // gradients (the overwritten entries never contribute the negative formula).
        var onLabel = labels.unsqueeze(1) == arange(numClasses, dtype: labels.dtype, device: labels.device);  // (N, C); background matches none
        var target = where(onLabel, quality.to(logits.dtype).unsqueeze(1), zeros_like(logits));
        var bce = F.binary_cross_entropy_with_logits(logits, target, reduction: nn.Reduction.None);
        return (bce * (target - logits.sigmoid()).abs().pow(Beta)).MoveToOuterDisposeScope();
    }

    /// <returns>Scalar: lossWeight · Σ_rows(weight · Σ_classes QFL) / (avgFactor + eps).</returns>
    /// <param name="weight">(N,) per-row weight (the label weights).</param>
    /// <param name="avgFactor">the classification normaliser.</param>
    public Tensor Forward(Tensor logits, Tensor labels, Tensor quality, Tensor weight, double avgFactor)
    {
        using var scope = NewDisposeScope();
        var perRow = Elementwise(logits, labels, quality).sum(1);
        return (LossWeight * WeightReduceLoss.Mean(perRow * weight, avgFactor)).MoveToOuterDisposeScope();
    }
}
