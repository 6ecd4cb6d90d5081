using GflTrainer.Boxes;
using static TorchSharp.torch;

namespace GflTrainer.Training.Losses;

/// <summary>GIoU loss (Rezatofighi et al. 2019): 1 − GIoU(pred, target), mmdetection <c>GIoULoss</c>.</summary>
internal sealed class GiouLoss(double lossWeight = 2.0, double eps = BoxOverlaps.DefaultEps)
{
    /// <summary>GFL reference: 2.</summary>
    public double LossWeight { get; } = lossWeight;

    /// <summary>Lower clamp of union and enclosure (GIoULoss is built with 1e-6 in mmdetection).</summary>
    public double Eps { get; } = eps;

    /// <param name="pred">(n, 4) xyxy.</param>
    /// <param name="target">(n, 4) xyxy.</param>
    /// <returns>(n,) 1 − GIoU.</returns>
    public Tensor Elementwise(Tensor pred, Tensor target) =>
        1 - BoxOverlaps.Aligned(pred, target, OverlapMode.Giou, Eps);

    /// <param name="pred">(n, 4) xyxy.</param>
    /// <param name="target">(n, 4) xyxy.</param>
    /// <param name="weight">(n,) or (n, 4) (averaged over the last dim), or null.</param>
    /// <param name="avgFactor">null: plain mean over pairs; otherwise Σ / (avgFactor + eps). GFL passes 1.0.</param>
    /// <returns>Scalar loss.</returns>
    public Tensor Forward(Tensor pred, Tensor target, Tensor? weight, double? avgFactor)
    {
        using var scope = NewDisposeScope();
        if (weight is not null && !(weight > 0).any().item<bool>())
        {
            // The reference returns (pred · weight).sum() = 0 without computing GIoU; it keeps the graph connected.
            var w = pred.dim() == weight.dim() + 1 ? weight.unsqueeze(1) : weight;
            return (pred * w).sum().MoveToOuterDisposeScope();
        }
        var loss = Elementwise(pred, target);
        if (weight is not null) loss = loss * (weight.dim() > 1 ? weight.mean(new long[] { -1 }) : weight);
        var reduced = avgFactor is { } factor ? WeightReduceLoss.Mean(loss, factor) : loss.mean();
        return (LossWeight * reduced).MoveToOuterDisposeScope();
    }
}
