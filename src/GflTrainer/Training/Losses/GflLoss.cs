using GflTrainer.Boxes;
using GflTrainer.Model;
using GflTrainer.Training.Targets;
using static TorchSharp.torch;

namespace GflTrainer.Training.Losses;

/// <summary>
/// mmdetection <c>GFLHead.loss_by_feat</c>: ATSS targets, then per level QFL over every anchor, and GIoU + DFL over the
/// positives in stride units weighted by the detached max class score. Normalisers are batch-global: QFL by
/// Σ_images max(num_pos, 1), and every level's GIoU and DFL by max(Σ of all positives' weights, 1).
/// </summary>
internal sealed class GflLoss : IDenseHeadLoss
{
    private readonly int _regMax;
    private readonly IReadOnlyList<int> _strides;
    private readonly Runtime.DeviceConstant _strideValues;
    private readonly GflTargetBuilder _targetBuilder;
    private readonly QualityFocalLoss _qfl;
    private readonly GiouLoss _giou;
    private readonly DistributionFocalLoss _dfl;

    /// <summary>The loss of <c>model.head</c> and <c>model.assigner</c>; <paramref name="ranks"/>: see <see cref="Ranks"/>.</summary>
    public static GflLoss FromConfig(Config.ModelConfig m, Runtime.ICollective? ranks = null) => new(
        numClasses: m.Head.NumClasses, regMax: m.Head.RegMax, strides: m.Head.Strides, atssTopK: m.Assigner.TopK,
        qflBeta: m.Head.Loss.QflBeta, clsWeight: m.Head.Loss.QflWeight, boxWeight: m.Head.Loss.GiouWeight,
        dflWeight: m.Head.Loss.DflWeight, octaveBaseScale: m.Head.OctaveBaseScale)
    {
        Ranks = ranks,
        Focal = m.Head.Loss.Cls == Config.ClsLossType.Focal
            ? new FocalLoss(m.Head.Loss.FocalGamma, m.Head.Loss.FocalAlpha, m.Head.Loss.FocalWeight) : null,
    };

    /// <param name="numClasses">C (80 for COCO).</param>
    /// <param name="regMax">R (16): bins 0..R per side.</param>
    /// <param name="strides">level strides, P3 first (8..128).</param>
    /// <param name="atssTopK">ATSS candidates per level (9).</param>
    /// <param name="qflBeta">QFL β (2).</param>
    /// <param name="clsWeight">QFL loss weight (1).</param>
    /// <param name="boxWeight">GIoU loss weight (2).</param>
    /// <param name="dflWeight">DFL loss weight (0.25).</param>
    /// <param name="octaveBaseScale">ATSS anchor side in strides (8); it changes which priors are assigned, nothing else
    /// (GFL regresses from the anchor centre).</param>
    public GflLoss(int numClasses, int regMax = 16, IReadOnlyList<int>? strides = null, int atssTopK = 9,
        double qflBeta = 2.0, double clsWeight = 1.0, double boxWeight = 2.0, double dflWeight = 0.25, double octaveBaseScale = 8)
    {
        NumClasses = numClasses;
        _regMax = regMax;
        _strides = strides ?? new[] { 8, 16, 32, 64, 128 };
        _strideValues = new(_strides.Select(x => (double)x).ToList());
        _targetBuilder = new GflTargetBuilder(new AnchorGenerator(_strides, octaveBaseScale), new AtssAssigner(atssTopK), numClasses);
        _qfl = new QualityFocalLoss(qflBeta, clsWeight);
        _giou = new GiouLoss(boxWeight);
        _dfl = new DistributionFocalLoss(dflWeight);
    }

    /// <summary>When set, the classification loss instead of QFL (<c>model.head.loss.cls: focal</c>): one-hot targets on
    /// the same ATSS positives, normalised by the same count (the GFL paper's ablation baseline).</summary>
    public FocalLoss? Focal { get; init; }

    /// <summary>Number of foreground classes.</summary>
    public int NumClasses { get; }

    public IAnchorTargetBuilder TargetBuilder => _targetBuilder;

    /// <summary>Data-parallel ranks whose normalisers are averaged (mmdetection's <c>reduce_mean</c> of avg_factor and of
    /// the box weight sum), so that with gradients averaged over ranks the update equals one process's on the union of
    /// the shards; null: one process.</summary>
    public Runtime.ICollective? Ranks { get; init; }

    IHeadLosses IDenseHeadLoss.Compute(HeadOutputs outputs, IReadOnlyList<Tensor> gtBoxes, IReadOnlyList<Tensor> gtLabels,
        IReadOnlyList<(int H, int W)> imagePadShapes, GflTargets? builtAhead) => Compute(outputs, gtBoxes, gtLabels, imagePadShapes, builtAhead: builtAhead);

    /// <param name="outputs">raw head outputs, per level (N, C, h, w) and (N, 4(R+1), h, w).</param>
    /// <param name="gtBoxes">per image (G_i, 4) xyxy pixels of the padded input.</param>
    /// <param name="gtLabels">per image (G_i,) int64 in 0..C−1.</param>
    /// <param name="imagePadShapes">per image its own padded (H, W), which sets its valid anchors.</param>
    /// <param name="ignoredBoxes">optional crowd regions per image, see <see cref="GflTargetBuilder.Build"/>;
    /// null reproduces the reference.</param>
    /// <param name="builtAhead">the batch's targets when built ahead of the step (<see cref="HostTargets"/>); used when laid
    /// out for these outputs' feature maps, else the loss builds them.</param>
    public LossBreakdown Compute(HeadOutputs outputs, IReadOnlyList<Tensor> gtBoxes, IReadOnlyList<Tensor> gtLabels,
        IReadOnlyList<(int H, int W)> imagePadShapes, IReadOnlyList<Tensor>? ignoredBoxes = null, GflTargets? builtAhead = null)
    {
        var levels = outputs.ClassScores.Count;
        if (levels != _strides.Count || outputs.BoxPredictions.Count != levels)
            throw new ArgumentException($"expected {_strides.Count} levels, got {levels} class and {outputs.BoxPredictions.Count} box outputs");
        var batch = outputs.ClassScores[0].shape[0];
        if (gtBoxes.Count != batch || gtLabels.Count != batch || imagePadShapes.Count != batch)
            throw new ArgumentException($"batch of {batch} images but {gtBoxes.Count} gt box lists, {gtLabels.Count} label lists, {imagePadShapes.Count} pad shapes");

        var device = outputs.ClassScores[0].device;
        var featmapSizes = outputs.ClassScores.Select(t => ((int)t.shape[2], (int)t.shape[3])).ToArray();
        var targets = GflTargets.For(ignoredBoxes is null ? builtAhead : null, batch, featmapSizes);   // built ahead without crowd regions
        if (targets is null)
            using (Runtime.StepProfiler.Phase("targets"))
                targets = _targetBuilder.Build(featmapSizes, gtBoxes, gtLabels, imagePadShapes, device, ignoredBoxes);
        // A device tensor, averaged over the ranks there (a host number would need a device round trip on NCCL).
        var clsAvgFactor = WeightReduceLoss.AvgFactorOf(targets, device, Ranks);

        // All levels as one computation (issue 21), reporting the reference's per-level values (LevelRows).
        var rows = new LevelRows(targets, batch);
        var logits = LevelRows.OfOutputs(outputs.ClassScores, NumClasses);
        var binLogits = LevelRows.OfOutputs(outputs.BoxPredictions, 4 * (_regMax + 1));
        var labels = rows.Labels;
        var strides = _strideValues.On(device);
        var positive = rows.Positives(NumClasses);
        var quality = zeros(labels.shape[0], dtype: logits.dtype, device: device);
        Tensor box, dfl, weightSums;
        Func<IReadOnlyList<LevelPositives>> positives;
        if (positive.shape[0] > 0)
        {
            Tensor weight, iou, dflTargets;
            var posBinLogits = binLogits.index_select(0, positive);
            using (no_grad())
            {
                weight = logits.detach().sigmoid().amax(new long[] { 1 }).index_select(0, positive);
            }
            var posLevel = rows.RowLevel.index_select(0, positive);
            var stride = strides.index_select(0, posLevel).unsqueeze(1);
            var centers = AnchorGenerator.Centers(rows.Anchors.index_select(0, positive)) / stride;
            var predDistances = Integral.Forward(posBinLogits, _regMax);
            var predBoxes = DistancePointBoxCoder.Decode(centers, predDistances);
            var targetBoxes = rows.BoxTargets.index_select(0, positive) / stride;
            using (no_grad())
            {
                iou = BoxOverlaps.Aligned(predBoxes.detach(), targetBoxes);
                dflTargets = DistancePointBoxCoder.Encode(centers, targetBoxes, _regMax);
            }
            quality.index_copy_(0, positive, iou);

            // mmdetection per level: GIoU with avg_factor 1 and DFL with avg_factor 4 (weight_reduce_loss: sum /
            // (avg_factor + eps)), both later divided by the box normaliser below.
            var levelMask = rows.LevelMask(positive, logits.dtype);
            var giou = _giou.Elementwise(predBoxes, targetBoxes) * weight;
            var dflPerBox = _dfl.Elementwise(posBinLogits.reshape(-1, _regMax + 1), dflTargets.reshape(-1)).view(-1, 4) * weight.unsqueeze(1);
            box = _giou.LossWeight * LevelRows.SumOverPositives(levelMask, giou) / (1.0 + WeightReduceLoss.Float32Eps);
            dfl = _dfl.LossWeight * LevelRows.SumOverPositives(levelMask, dflPerBox.sum(1)) / (4.0 + WeightReduceLoss.Float32Eps);
            weightSums = LevelRows.SumOverPositives(levelMask, weight);
            // Without the pads of positives padded to a capacity (they follow the real ones).
            var real = targets.PositiveMask is null ? positive.shape[0] : targets.PositiveCount;
            Tensor Real(Tensor x) => x.narrow(0, 0, real);
            var (w, d, p, t, q, f) = (Real(weight), Real(predDistances.detach()), Real(predBoxes.detach()), Real(targetBoxes), Real(iou), Real(dflTargets));
            var (pr, pl) = (Real(positive), Real(posLevel));
            positives = () => SplitByLevel(pr, pl, rows.RowsPerLevel, w, d, p, t, q, f);
        }
        else
        {
            // The reference keeps the graph connected with bbox_pred.sum() * 0 on every level.
            box = stack(outputs.BoxPredictions.Select(t => t.sum() * 0).ToList(), 0);
            dfl = stack(outputs.BoxPredictions.Select(t => t.sum() * 0).ToList(), 0);
            weightSums = zeros(levels, dtype: logits.dtype, device: device);
            positives = () => Enumerable.Range(0, levels).Select(_ => NoPositives(logits.dtype, device)).ToList();
        }

        var cls = (Focal is { } focal
            ? focal.ForwardPerSegment(logits, labels, rows.LabelWeights, clsAvgFactor, rows.RowsPerLevel, positive)
            : _qfl.ForwardPerSegment(logits, labels, quality, rows.LabelWeights, clsAvgFactor, rows.RowsPerLevel, positive)).unbind(0);

        var weightSumLevels = weightSums.unbind(0);
        // Python sum over levels in float32, clamped after summing (mmdetection PR #4978), then a constant.
        var boxAvgFactor = WeightReduceLoss.BoxAvgFactor(LossScalars.SumLevels(weightSumLevels), Ranks);
        var boxLevels = (box / boxAvgFactor).unbind(0);
        var dflLevels = (dfl / boxAvgFactor).unbind(0);

        var clsTotal = LossScalars.SumLevels(cls);
        var boxTotal = LossScalars.SumLevels(boxLevels);
        var dflTotal = LossScalars.SumLevels(dflLevels);
        return new LossBreakdown(cls, boxLevels, dflLevels, clsTotal, boxTotal, dflTotal, clsTotal + boxTotal + dflTotal,
            clsAvgFactor, boxAvgFactor, weightSums, targets, () => rows.ToImageMajor(quality), positives);
    }

    // The positives of each level for inspection (tests, diagnostics): reads the level counts, so only on request.
    private static IReadOnlyList<LevelPositives> SplitByLevel(Tensor positive, Tensor posLevel, long[] rowsPerLevel, Tensor weight,
        Tensor predDistances, Tensor predBoxes, Tensor targetBoxes, Tensor quality, Tensor dflTargets)
    {
        var counts = posLevel.bincount(null, rowsPerLevel.Length).cpu().data<long>().ToArray();
        var result = new List<LevelPositives>(rowsPerLevel.Length);
        long start = 0, rowStart = 0;
        for (int l = 0; l < rowsPerLevel.Length; l++)
        {
            var n = counts[l];
            result.Add(new LevelPositives(positive.narrow(0, start, n) - rowStart, weight.narrow(0, start, n),
                predDistances.narrow(0, start, n), predBoxes.narrow(0, start, n), targetBoxes.narrow(0, start, n),
                quality.narrow(0, start, n), dflTargets.narrow(0, start, n)));
            start += n;
            rowStart += rowsPerLevel[l];
        }
        return result;
    }

    private static LevelPositives NoPositives(ScalarType dtype, Device device)
    {
        var none = zeros(0, 4, dtype: dtype, device: device);
        var empty = zeros(0, dtype: dtype, device: device);
        return new LevelPositives(zeros(0, dtype: int64, device: device), empty, none, none, none, empty, none);
    }
}
