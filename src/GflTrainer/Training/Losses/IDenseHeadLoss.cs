using GflTrainer.Config;
using GflTrainer.Model;
using static TorchSharp.torch;

namespace GflTrainer.Training.Losses;

/// <summary>A head's losses of one batch, as the train step uses them: the total backward runs on and the named terms
/// mmdetection logs (<c>loss_cls</c>, <c>loss_bbox</c>, then <c>loss_dfl</c> or <c>loss_centerness</c>).</summary>
internal interface IHeadLosses
{
    Tensor Total { get; }

    IReadOnlyList<(string Name, Tensor Value)> Terms { get; }

    /// <summary>Reads the total and every term with one device sync.</summary>
    LossScalars ToScalars();
}

/// <summary>The training loss of a dense head (mmdetection's <c>loss_by_feat</c>): targets, losses and normalisers
/// from the head's raw outputs and the ground truth. One per head type; <see cref="DenseHeadLoss.FromConfig"/> picks it.</summary>
internal interface IDenseHeadLoss
{
    /// <param name="outputs">the head's raw per-level outputs.</param>
    /// <param name="gtBoxes">per image (G_i, 4) xyxy pixels of the padded input.</param>
    /// <param name="gtLabels">per image (G_i,) int64 in 0..C−1.</param>
    /// <param name="imagePadShapes">per image its own padded (H, W).</param>
    /// <param name="builtAhead">the batch's targets built before the step (<see cref="HostTargets"/>), used when they
    /// were laid out for the outputs' feature maps; null: the loss builds them.</param>
    IHeadLosses Compute(HeadOutputs outputs, IReadOnlyList<Tensor> gtBoxes, IReadOnlyList<Tensor> gtLabels,
        IReadOnlyList<(int H, int W)> imagePadShapes, Targets.GflTargets? builtAhead = null);

    /// <summary>The anchors and assigner this loss trains with (read by <c>gfl data stats</c> for anchor coverage).</summary>
    Targets.IAnchorTargetBuilder TargetBuilder { get; }
}

/// <summary>The one place where <c>model.head.type</c> becomes the training loss (the head itself is built by
/// <see cref="DetectorFactory"/>).</summary>
internal static class DenseHeadLoss
{
    /// <param name="ranks">data-parallel ranks whose normalisers are averaged (mmdetection's reduce_mean); null: one process.</param>
    public static IDenseHeadLoss FromConfig(ModelConfig m, Runtime.ICollective? ranks = null) => m.Head.Type switch
    {
        HeadType.Gfl => GflLoss.FromConfig(m, ranks),
        HeadType.Atss => AtssLoss.FromConfig(m, ranks),
        // mmdetection's AnchorHead does not reduce_mean its normaliser: each rank divides by its own positives.
        HeadType.Retinanet => RetinaLoss.FromConfig(m),
        _ => throw new ArgumentOutOfRangeException(nameof(m), m.Head.Type, "unknown head type"),
    };
}
