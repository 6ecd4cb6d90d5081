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
        // mmdetection's form: the negative formula for every entry, BCE(z, 0)·σ(z)^β, then the (row, label) entries of
        // foreground rows overwritten with BCE(z, y)·|y − σ(z)|^β. Cheaper than a dense target (4 passes over N x C
        // instead of 7) and the same values and gradients (overwritten entries contribute nothing).
        var sigma = logits.sigmoid();
        var loss = F.binary_cross_entropy_with_logits(logits, zeros_like(logits), reduction: nn.Reduction.None) * sigma.pow(Beta);
        var rows = ((labels >= 0) & (labels < numClasses)).nonzero().squeeze(1);
        if (rows.shape[0] > 0)
        {
            var cols = labels.index_select(0, rows);
            var posLogits = logits.index(rows, cols);
            var y = quality.to(logits.dtype).index_select(0, rows);
            var scale = y - sigma.index(rows, cols);
            var posLoss = F.binary_cross_entropy_with_logits(posLogits, y, reduction: nn.Reduction.None) * scale.abs().pow(Beta);
            loss.index_put_(posLoss, rows, cols);   // in place on the product: its backward needs only the factors
        }
        return loss.MoveToOuterDisposeScope();
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
