using GflTrainer.Boxes;
using GflTrainer.Model;
using GflTrainer.Training.Targets;
using static TorchSharp.torch;

namespace GflTrainer.Training.Losses;

/// <summary>RetinaNet losses of one batch (mmdetection's loss dict: loss_cls, loss_bbox, per level).</summary>
/// <param name="AvgFactor">0-d float64: Σ over images of max(num_pos, 1), both losses' normaliser (not averaged over ranks:
/// mmdetection's AnchorHead has no reduce_mean).</param>
internal sealed record RetinaLossBreakdown(IReadOnlyList<Tensor> ClsPerLevel, IReadOnlyList<Tensor> BoxPerLevel, Tensor Cls,
    Tensor Box, Tensor Total, Tensor AvgFactor, GflTargets Targets) : IHeadLosses
{
    public IReadOnlyList<(string Name, Tensor Value)> Terms => [("loss_cls", Cls), ("loss_bbox", Box)];

    public LossScalars ToScalars() => LossScalars.Read(Terms, Total);
}

/// <summary>
/// mmdetection <c>AnchorHead.loss_by_feat</c> as RetinaNet configures it (Lin et al. 2017): A anchors per location
/// (<see cref="AnchorGenerator"/>), <see cref="MaxIouTargetBuilder"/> targets, per level Focal Loss over the anchors
/// that are not ignored and the box loss on the positives, both divided by Σ_images max(num_pos, 1): L1 between the
/// predicted deltas and the gt encoded by <see cref="DeltaXywhBoxCoder"/> (means 0, stds 1), or, with
/// reg_decoded_bbox, GIoU between the decoded boxes and the gt.
/// </summary>
internal sealed class RetinaLoss : IDenseHeadLoss
{
    private readonly MaxIouTargetBuilder _targetBuilder;
    private readonly FocalLoss _focal;
    private readonly GiouLoss? _giou;
    private readonly double _l1Weight;
    private readonly DeltaXywhBoxCoder _coder = new();

    /// <summary>The loss of <c>model.head</c> (type retinanet) and <c>model.assigner</c>: mmdetection's
    /// retinanet_r50_fpn_1x_coco (FocalLoss γ 2, α 0.25, weight 1; L1Loss weight 1; MaxIoUAssigner 0.5 / 0.4 / 0).</summary>
    public static RetinaLoss FromConfig(Config.ModelConfig m) => new(
        numClasses: m.Head.NumClasses,
        anchors: AnchorGenerator.FromConfig(m.Head),
        assigner: new MaxIouAssigner(m.Assigner.PosIouThr, m.Assigner.NegIouThr, m.Assigner.MinPosIou),
        focal: new FocalLoss(m.Head.Loss.FocalGamma, m.Head.Loss.FocalAlpha, m.Head.Loss.FocalWeight),
        giou: m.Head.Loss.Box == Config.BoxLossType.Giou ? new GiouLoss(m.Head.Loss.GiouWeight) : null,
        l1Weight: m.Head.Loss.L1Weight);

    /// <param name="anchors">null: RetinaNet's (strides 8..128, octave 4, 3 scales, ratios 0.5, 1, 2).</param>
    /// <param name="giou">GIoU on decoded boxes instead of L1 on deltas.</param>
    public RetinaLoss(int numClasses, AnchorGenerator? anchors = null, MaxIouAssigner? assigner = null, FocalLoss? focal = null,
        GiouLoss? giou = null, double l1Weight = 1.0)
    {
        NumClasses = numClasses;
        _targetBuilder = new MaxIouTargetBuilder(anchors ?? DefaultAnchors(), assigner ?? new MaxIouAssigner(), numClasses);
        _focal = focal ?? new FocalLoss();
        _giou = giou;
        _l1Weight = l1Weight;
    }

    /// <summary>retinanet_r50_fpn_1x_coco's anchor generator.</summary>
    public static AnchorGenerator DefaultAnchors() => new([8, 16, 32, 64, 128], 4, 3, [0.5, 1.0, 2.0]);

    public int NumClasses { get; }

    public IAnchorTargetBuilder TargetBuilder => _targetBuilder;

    IHeadLosses IDenseHeadLoss.Compute(HeadOutputs outputs, IReadOnlyList<Tensor> gtBoxes, IReadOnlyList<Tensor> gtLabels,
        IReadOnlyList<(int H, int W)> imagePadShapes, GflTargets? builtAhead) => Compute(outputs, gtBoxes, gtLabels, imagePadShapes, builtAhead: builtAhead);

    /// <param name="outputs">per level (N, A·C, h, w) logits and (N, A·4, h, w) deltas.</param>
    /// <param name="gtBoxes">per image (G_i, 4) xyxy pixels of the padded input.</param>
    /// <param name="gtLabels">per image (G_i,) int64 in 0..C−1.</param>
    /// <param name="imagePadShapes">per image its own padded (H, W).</param>
    /// <param name="builtAhead">the batch's targets when built ahead of the step (<see cref="HostTargets"/>); used when laid
    /// out for these outputs' feature maps, else the loss builds them.</param>
    public RetinaLossBreakdown Compute(HeadOutputs outputs, IReadOnlyList<Tensor> gtBoxes, IReadOnlyList<Tensor> gtLabels,
        IReadOnlyList<(int H, int W)> imagePadShapes, GflTargets? builtAhead = null)
    {
        int levels = outputs.ClassScores.Count;
        var device = outputs.ClassScores[0].device;
        var batch = outputs.ClassScores[0].shape[0];
        var featmapSizes = outputs.ClassScores.Select(t => ((int)t.shape[2], (int)t.shape[3])).ToArray();
        var targets = GflTargets.For(builtAhead, batch, featmapSizes);
        if (targets is null)
            using (Runtime.StepProfiler.Phase("targets"))
                targets = _targetBuilder.Build(featmapSizes, gtBoxes, gtLabels, imagePadShapes, device);
        // A tensor (made with targets built ahead), as the other heads: no number for a CUDA graph to bake in.
        var avgFactor = WeightReduceLoss.AvgFactorOf(targets, device, ranks: null);

        // All levels as one computation (issue 21), reporting the reference's per-level values (LevelRows).
        var rows = new LevelRows(targets, batch);
        var logits = LevelRows.OfOutputs(outputs.ClassScores, NumClasses);
        var deltas = LevelRows.OfOutputs(outputs.BoxPredictions, 4);
        var positive = rows.Positives(NumClasses);   // found with targets built ahead, else the loss's one nonzero; shared with Focal Loss
        var cls = _focal.ForwardPerSegment(logits, rows.Labels, rows.LabelWeights, avgFactor, rows.RowsPerLevel, positive).unbind(0);
        Tensor[] box;
        if (positive.shape[0] > 0)
        {
            var posAnchors = rows.Anchors.index_select(0, positive);
            var posTargets = rows.BoxTargets.index_select(0, positive);
            var posDeltas = deltas.index_select(0, positive);
            var levelMask = rows.LevelMask(positive, logits.dtype);
            Tensor perBox;   // each positive's loss before the normaliser, as mmdetection's per-level weight_reduce_loss
            double weight;
            if (_giou is not null)
            {
                perBox = _giou.Elementwise(_coder.Decode(posAnchors, posDeltas), posTargets);
                weight = _giou.LossWeight;
            }
            else
            {
                Tensor encoded;
                using (no_grad()) encoded = _coder.Encode(posAnchors, posTargets);
                perBox = (posDeltas - encoded).abs().sum(1);
                weight = _l1Weight;
            }
            box = (weight * LevelRows.SumOverPositives(levelMask, perBox) / WeightReduceLoss.Divisor(avgFactor, logits.dtype)).unbind(0);
        }
        else
            box = outputs.BoxPredictions.Select(t => t.sum() * 0).ToArray();   // the reference's weights are all 0: a connected zero
        var clsTotal = LossScalars.SumLevels(cls);
        var boxTotal = LossScalars.SumLevels(box);
        return new RetinaLossBreakdown(cls, box, clsTotal, boxTotal, clsTotal + boxTotal, avgFactor, targets);
    }
}
