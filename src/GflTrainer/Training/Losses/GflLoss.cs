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
        IReadOnlyList<(int H, int W)> imagePadShapes) => Compute(outputs, gtBoxes, gtLabels, imagePadShapes);

    /// <param name="outputs">raw head outputs, per level (N, C, h, w) and (N, 4(R+1), h, w).</param>
    /// <param name="gtBoxes">per image (G_i, 4) xyxy pixels of the padded input.</param>
    /// <param name="gtLabels">per image (G_i,) int64 in 0..C−1.</param>
    /// <param name="imagePadShapes">per image its own padded (H, W), which sets its valid anchors.</param>
    /// <param name="ignoredBoxes">optional crowd regions per image, see <see cref="GflTargetBuilder.Build"/>;
    /// null reproduces the reference.</param>
    public LossBreakdown Compute(HeadOutputs outputs, IReadOnlyList<Tensor> gtBoxes, IReadOnlyList<Tensor> gtLabels,
        IReadOnlyList<(int H, int W)> imagePadShapes, IReadOnlyList<Tensor>? ignoredBoxes = null)
    {
        var levels = outputs.ClassScores.Count;
        if (levels != _strides.Count || outputs.BoxPredictions.Count != levels)
            throw new ArgumentException($"expected {_strides.Count} levels, got {levels} class and {outputs.BoxPredictions.Count} box outputs");
        var batch = outputs.ClassScores[0].shape[0];
        if (gtBoxes.Count != batch || gtLabels.Count != batch || imagePadShapes.Count != batch)
            throw new ArgumentException($"batch of {batch} images but {gtBoxes.Count} gt box lists, {gtLabels.Count} label lists, {imagePadShapes.Count} pad shapes");

        var device = outputs.ClassScores[0].device;
        var featmapSizes = outputs.ClassScores.Select(t => ((int)t.shape[2], (int)t.shape[3])).ToArray();
        GflTargets targets;
        using (Runtime.StepProfiler.Phase("targets"))
            targets = _targetBuilder.Build(featmapSizes, gtBoxes, gtLabels, imagePadShapes, device, ignoredBoxes);
        var clsAvgFactor = targets.ClassificationAvgFactor;
        if (Ranks is { WorldSize: > 1 }) clsAvgFactor = Ranks.AllReduceMean([clsAvgFactor])[0];

        var cls = new Tensor[levels];
        var box = new Tensor[levels];
        var dfl = new Tensor[levels];
        var weightSums = new Tensor[levels];
        var quality = new Tensor[levels];
        var positives = new LevelPositives[levels];
        long offset = 0;
        for (var l = 0; l < levels; l++)
        {
            var count = targets.AnchorsPerLevel[l];
            (cls[l], box[l], dfl[l], weightSums[l], quality[l], positives[l]) = LevelLoss(
                outputs.ClassScores[l], outputs.BoxPredictions[l], targets, offset, count, _strides[l], clsAvgFactor);
            offset += count;
        }

        // Python sum over levels in float32, clamped after summing (mmdetection PR #4978), then a constant.
        var weightSum = LossScalars.SumLevels(weightSums);
        // Over ranks: the mean of the ranks' sums, clamped at 1/W, i.e. the global batch's sum clamped at 1, so W ranks
        // train exactly as one process on their union. (mmdetection clamps the mean at 1, the global sum at W: the two
        // differ only while the positives' weights of a global batch sum to less than W, in the first iterations.)
        var boxAvgFactor = Ranks is { WorldSize: > 1 }
            ? Math.Max(Ranks.AllReduceMean([weightSum.item<float>()])[0], 1.0 / Ranks.WorldSize)
            : (double)weightSum.clamp_min(1).item<float>();
        for (var l = 0; l < levels; l++)
        {
            box[l] = box[l] / boxAvgFactor;
            dfl[l] = dfl[l] / boxAvgFactor;
        }

        var clsTotal = LossScalars.SumLevels(cls);
        var boxTotal = LossScalars.SumLevels(box);
        var dflTotal = LossScalars.SumLevels(dfl);
        return new LossBreakdown(cls, box, dfl, clsTotal, boxTotal, dflTotal, clsTotal + boxTotal + dflTotal,
            clsAvgFactor, boxAvgFactor, stack(weightSums, 0), targets, cat(quality, 1), positives);
    }


    // loss_by_feat_single for one level of the whole batch; box and DFL losses are not yet divided by the global
    // weight sum. Returns the level's QFL targets as (N, A_l).
    private (Tensor Cls, Tensor Box, Tensor Dfl, Tensor WeightSum, Tensor Quality, LevelPositives Positives) LevelLoss(
        Tensor clsScore, Tensor boxPred, GflTargets targets, long offset, long count, int stride, double clsAvgFactor)
    {
        var batch = clsScore.shape[0];
        var device = clsScore.device;
        // (N, C, h, w) -> (N·h·w, C), image-major then row-major as the anchors.
        var logits = clsScore.permute(0, 2, 3, 1).reshape(-1, NumClasses);
        var binLogits = boxPred.permute(0, 2, 3, 1).reshape(-1, 4 * (_regMax + 1));
        var anchors = targets.Anchors.narrow(0, offset, count).repeat(batch, 1);
        var labels = targets.Labels.narrow(1, offset, count).reshape(-1);
        var labelWeights = targets.LabelWeights.narrow(1, offset, count).reshape(-1);
        var boxTargets = targets.BoxTargets.narrow(1, offset, count).reshape(-1, 4);

        var positive = ((labels >= 0) & (labels < NumClasses)).nonzero().squeeze(1);
        var quality = zeros(labels.shape[0], dtype: logits.dtype, device: device);
        Tensor boxLoss, dflLoss, weightSum;
        LevelPositives levelPositives;
        if (positive.shape[0] > 0)
        {
            Tensor weight, predDistances, predBoxes, targetBoxes, iou, dflTargets;
            var posBinLogits = binLogits.index_select(0, positive);
            using (no_grad())
            {
                weight = logits.detach().sigmoid().amax(new long[] { 1 }).index_select(0, positive);
            }
            var centers = AnchorGenerator.Centers(anchors.index_select(0, positive)) / stride;
            predDistances = Integral.Forward(posBinLogits, _regMax);
            predBoxes = DistancePointBoxCoder.Decode(centers, predDistances);
            targetBoxes = boxTargets.index_select(0, positive) / stride;
            using (no_grad())
            {
                iou = BoxOverlaps.Aligned(predBoxes.detach(), targetBoxes);
                dflTargets = DistancePointBoxCoder.Encode(centers, targetBoxes, _regMax);
            }
            quality.index_copy_(0, positive, iou);

            boxLoss = _giou.Forward(predBoxes, targetBoxes, weight, avgFactor: 1.0);
            dflLoss = _dfl.Forward(posBinLogits.reshape(-1, _regMax + 1), dflTargets.reshape(-1),
                weight.unsqueeze(1).expand(-1, 4).reshape(-1), avgFactor: 4.0);
            weightSum = weight.sum();
            levelPositives = new LevelPositives(positive, weight, predDistances.detach(), predBoxes.detach(), targetBoxes, iou, dflTargets);
        }
        else
        {
            // The reference keeps the graph connected with bbox_pred.sum() * 0 (which is −0.0 for a negative sum).
            boxLoss = boxPred.sum() * 0;
            dflLoss = boxPred.sum() * 0;
            weightSum = zeros(1, dtype: logits.dtype, device: device).squeeze();
            var none = zeros(0, 4, dtype: logits.dtype, device: device);
            levelPositives = new LevelPositives(positive, zeros(0, dtype: logits.dtype, device: device), none, none, none,
                zeros(0, dtype: logits.dtype, device: device), none);
        }

        var clsLoss = Focal is { } focal ? focal.Forward(logits, labels, labelWeights, clsAvgFactor)
            : _qfl.Forward(logits, labels, quality, labelWeights, clsAvgFactor);
        return (clsLoss, boxLoss, dflLoss, weightSum, quality.reshape(batch, count), levelPositives);
    }
}
