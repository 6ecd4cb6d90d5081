using GflTrainer.Boxes;
using GflTrainer.Model;
using GflTrainer.Training.Targets;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace GflTrainer.Training.Losses;

/// <summary>ATSS losses of one batch (mmdetection's loss dict: loss_cls, loss_bbox, loss_centerness, per level).</summary>
/// <param name="BoxPerLevel">GIoU per level, already divided by <paramref name="BoxAvgFactor"/>.</param>
/// <param name="ClsAvgFactor">0-d float64: Σ over images of max(num_pos, 1) (averaged over ranks): Focal Loss's and the centerness
/// BCE's normaliser.</param>
/// <param name="BoxAvgFactor">0-d: max(Σ of the positives' centerness targets, 1) (<see cref="WeightReduceLoss.BoxAvgFactor"/>).</param>
/// <param name="CenternessSumPerLevel">(L,) Σ of each level's centerness targets.</param>
internal sealed record AtssLossBreakdown(IReadOnlyList<Tensor> ClsPerLevel, IReadOnlyList<Tensor> BoxPerLevel,
    IReadOnlyList<Tensor> CenternessPerLevel, Tensor Cls, Tensor Box, Tensor Centerness, Tensor Total, Tensor ClsAvgFactor,
    Tensor BoxAvgFactor, Tensor CenternessSumPerLevel, GflTargets Targets) : IHeadLosses
{
    public IReadOnlyList<(string Name, Tensor Value)> Terms => [("loss_cls", Cls), ("loss_bbox", Box), ("loss_centerness", Centerness)];

    public LossScalars ToScalars() => LossScalars.Read(Terms, Total);
}

/// <summary>
/// mmdetection <c>ATSSHead.loss_by_feat</c> (Zhang et al. 2020): the same ATSS targets as GFL (one square anchor per
/// location, <see cref="GflTargetBuilder"/>); per level Focal Loss over every valid anchor, normalised by Σ_images
/// max(num_pos, 1); on the positives the deltas are decoded from the anchors (<see cref="DeltaXywhBoxCoder"/>, stds
/// 0.1/0.1/0.2/0.2; reg_decoded_bbox) and compared with the gt boxes by GIoU weighted by the centerness target (avg
/// factor 1), and the centerness logit is trained by BCE against that target with the classification normaliser; every
/// level's GIoU is finally divided by the batch's Σ of centerness targets clamped at 1.
/// </summary>
internal sealed class AtssLoss : IDenseHeadLoss
{
    private readonly GflTargetBuilder _targetBuilder;
    private readonly FocalLoss _focal;
    private readonly GiouLoss _giou;
    private readonly DeltaXywhBoxCoder _coder;
    private readonly double _centernessWeight;

    /// <summary>The loss of <c>model.head</c> (type atss) and <c>model.assigner</c>: mmdetection's atss_r50_fpn_1x_coco
    /// (FocalLoss γ 2, α 0.25, weight 1; GIoULoss weight 2; centerness BCE weight 1).</summary>
    public static AtssLoss FromConfig(Config.ModelConfig m, Runtime.ICollective? ranks = null) => new(
        numClasses: m.Head.NumClasses, strides: m.Head.Strides, atssTopK: m.Assigner.TopK,
        focal: new FocalLoss(m.Head.Loss.FocalGamma, m.Head.Loss.FocalAlpha, m.Head.Loss.FocalWeight),
        boxWeight: m.Head.Loss.GiouWeight, centernessWeight: m.Head.Loss.CenternessWeight, octaveBaseScale: m.Head.OctaveBaseScale)
    {
        Ranks = ranks,
    };

    /// <param name="octaveBaseScale">anchor side in strides (8).</param>
    public AtssLoss(int numClasses, IReadOnlyList<int>? strides = null, int atssTopK = 9, FocalLoss? focal = null,
        double boxWeight = 2.0, double centernessWeight = 1.0, double octaveBaseScale = 8)
    {
        NumClasses = numClasses;
        _targetBuilder = new GflTargetBuilder(new AnchorGenerator(strides ?? [8, 16, 32, 64, 128], octaveBaseScale),
            new AtssAssigner(atssTopK), numClasses);
        _focal = focal ?? new FocalLoss();
        _giou = new GiouLoss(boxWeight);
        _coder = DeltaXywhBoxCoder.Atss;
        _centernessWeight = centernessWeight;
    }

    public int NumClasses { get; }

    public IAnchorTargetBuilder TargetBuilder => _targetBuilder;

    /// <summary>Data-parallel ranks whose normalisers are averaged (mmdetection's <c>reduce_mean</c>), as in
    /// <see cref="GflLoss.Ranks"/>; null: one process.</summary>
    public Runtime.ICollective? Ranks { get; init; }

    IHeadLosses IDenseHeadLoss.Compute(HeadOutputs outputs, IReadOnlyList<Tensor> gtBoxes, IReadOnlyList<Tensor> gtLabels,
        IReadOnlyList<(int H, int W)> imagePadShapes, GflTargets? builtAhead) => Compute(outputs, gtBoxes, gtLabels, imagePadShapes, builtAhead: builtAhead);

    /// <param name="outputs">per level (N, C, h, w) logits, (N, 4, h, w) deltas and <see cref="HeadOutputs.Centerness"/>
    /// (N, 1, h, w) logits.</param>
    /// <param name="gtBoxes">per image (G_i, 4) xyxy pixels of the padded input.</param>
    /// <param name="gtLabels">per image (G_i,) int64 in 0..C−1.</param>
    /// <param name="imagePadShapes">per image its own padded (H, W).</param>
    /// <param name="builtAhead">the batch's targets when built ahead of the step (<see cref="HostTargets"/>); used when laid
    /// out for these outputs' feature maps, else the loss builds them.</param>
    public AtssLossBreakdown Compute(HeadOutputs outputs, IReadOnlyList<Tensor> gtBoxes, IReadOnlyList<Tensor> gtLabels,
        IReadOnlyList<(int H, int W)> imagePadShapes, GflTargets? builtAhead = null)
    {
        var centernessMaps = outputs.Centerness ?? throw new ArgumentException("ATSS loss: the head outputs have no centerness maps");
        int levels = outputs.ClassScores.Count;
        var device = outputs.ClassScores[0].device;
        var batch = outputs.ClassScores[0].shape[0];
        var featmapSizes = outputs.ClassScores.Select(t => ((int)t.shape[2], (int)t.shape[3])).ToArray();
        var targets = GflTargets.For(builtAhead, batch, featmapSizes);
        if (targets is null)
            using (Runtime.StepProfiler.Phase("targets"))
                targets = _targetBuilder.Build(featmapSizes, gtBoxes, gtLabels, imagePadShapes, device);
        var avgFactor = WeightReduceLoss.AvgFactorOf(targets, device, Ranks);

        // All levels as one computation (issue 21), reporting the reference's per-level values (LevelRows).
        var rows = new LevelRows(targets, batch);
        var logits = LevelRows.OfOutputs(outputs.ClassScores, NumClasses);
        var deltas = LevelRows.OfOutputs(outputs.BoxPredictions, 4);
        var centerness = LevelRows.OfOutputs(centernessMaps, 1).reshape(-1);
        var positive = rows.Positives(NumClasses);   // found with targets built ahead, else the loss's one nonzero; shared with Focal Loss
        var cls = _focal.ForwardPerSegment(logits, rows.Labels, rows.LabelWeights, avgFactor, rows.RowsPerLevel, positive).unbind(0);
        Tensor box, ctr, sums;
        if (positive.shape[0] > 0)
        {
            var posAnchors = rows.Anchors.index_select(0, positive);
            var posTargets = rows.BoxTargets.index_select(0, positive);
            Tensor centernessTargets;
            using (no_grad()) centernessTargets = CenternessTarget.Compute(posAnchors, posTargets);
            var decoded = _coder.Decode(posAnchors, deltas.index_select(0, positive));
            var levelMask = rows.LevelMask(positive, logits.dtype);
            // Per level as mmdetection: GIoU weighted by the centerness targets with avg_factor 1 (divided by the box
            // normaliser below), BCE of the centerness logits with the classification normaliser.
            box = _giou.LossWeight * LevelRows.SumOverPositives(levelMask, _giou.Elementwise(decoded, posTargets) * centernessTargets)
                / (1.0 + WeightReduceLoss.Float32Eps);
            var bce = F.binary_cross_entropy_with_logits(centerness.index_select(0, positive), centernessTargets, reduction: nn.Reduction.None);
            ctr = _centernessWeight * LevelRows.SumOverPositives(levelMask, bce) / WeightReduceLoss.Divisor(avgFactor, logits.dtype);
            sums = LevelRows.SumOverPositives(levelMask, centernessTargets);
        }
        else
        {
            // The reference keeps the graph connected with bbox_pred.sum() * 0 and centerness.sum() * 0 on every level.
            box = stack(outputs.BoxPredictions.Select(t => t.sum() * 0).ToList(), 0);
            ctr = stack(centernessMaps.Select(t => t.sum() * 0).ToList(), 0);
            sums = zeros(levels, dtype: logits.dtype, device: device);
        }
        // Σ over levels in float32, then over ranks, as GflLoss does.
        var boxAvgFactor = WeightReduceLoss.BoxAvgFactor(LossScalars.SumLevels(sums.unbind(0)), Ranks);
        var boxLevels = (box / boxAvgFactor).unbind(0);
        var ctrLevels = ctr.unbind(0);
        var clsTotal = LossScalars.SumLevels(cls);
        var boxTotal = LossScalars.SumLevels(boxLevels);
        var ctrTotal = LossScalars.SumLevels(ctrLevels);
        return new AtssLossBreakdown(cls, boxLevels, ctrLevels, clsTotal, boxTotal, ctrTotal, clsTotal + boxTotal + ctrTotal, avgFactor,
            boxAvgFactor, sums, targets);
    }

}
