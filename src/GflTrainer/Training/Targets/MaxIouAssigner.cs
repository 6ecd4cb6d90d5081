using GflTrainer.Boxes;
using static TorchSharp.torch;

namespace GflTrainer.Training.Targets;

/// <summary>Result of <see cref="MaxIouAssigner.Assign"/> for one image (mmdetection's AssignResult).</summary>
/// <param name="GtIndex">(n,) int64: −1 ignored (IoU between the thresholds), 0 negative, i + 1 assigned to gt i.</param>
/// <param name="MaxOverlaps">(n,) float: each prior's best IoU with any gt (0 when the image has no gt).</param>
/// <param name="Labels">(n,) int64: the assigned gt's label, −1 where not positive.</param>
internal sealed record MaxIouAssignment(Tensor GtIndex, Tensor MaxOverlaps, Tensor Labels);

/// <summary>
/// mmdetection <c>MaxIoUAssigner</c> (RetinaNet: pos_iou_thr 0.5, neg_iou_thr 0.4, min_pos_iou 0, gt_max_assign_all,
/// match_low_quality): a prior is negative when its best IoU is below neg_iou_thr, positive for its best gt at
/// pos_iou_thr or more, ignored in between; then every gt whose best IoU reaches min_pos_iou also takes the priors of
/// that best IoU (all of them with gt_max_assign_all), even below pos_iou_thr, so no gt is left without a prior.
/// mmdetection does that in a Python loop over the gts, a later gt overwriting an earlier one; here it is one
/// vectorised step that picks, per prior, the last such gt: the same result. With min_pos_iou 0 a gt that overlaps
/// no prior takes every prior of IoU 0 (the reference's behaviour, kept).
/// </summary>
internal sealed class MaxIouAssigner(double posIouThr = 0.5, double negIouThr = 0.4, double minPosIou = 0.0,
    bool gtMaxAssignAll = true, bool matchLowQuality = true)
{
    public double PosIouThr { get; } = posIouThr;
    public double NegIouThr { get; } = negIouThr;
    public double MinPosIou { get; } = minPosIou;

    /// <param name="priors">(n, 4) xyxy anchors of one image.</param>
    /// <param name="gtBoxes">(G, 4) xyxy.</param>
    /// <param name="gtLabels">(G,) int64.</param>
    public MaxIouAssignment Assign(Tensor priors, Tensor gtBoxes, Tensor gtLabels)
    {
        using var scope = NewDisposeScope();
        long n = priors.shape[0], numGts = gtBoxes.shape[0];
        var device = priors.device;
        if (numGts == 0 || n == 0)
        {
            var none = MaxIouAssignment(full(n, numGts == 0 ? 0L : -1L, dtype: int64, device: device),
                zeros(n, dtype: priors.dtype, device: device), full(n, -1L, dtype: int64, device: device));
            return none;
        }
        var overlaps = BoxOverlaps.Pairwise(gtBoxes, priors);   // (G, n)
        var (maxOverlaps, argmax) = overlaps.max(0);
        var gtIndex = full(n, -1L, dtype: int64, device: device);
        gtIndex = where((maxOverlaps >= 0) & (maxOverlaps < NegIouThr), zeros_like(gtIndex), gtIndex);
        gtIndex = where(maxOverlaps >= PosIouThr, argmax + 1, gtIndex);
        if (matchLowQuality)
        {
            var (gtMax, gtArgmax) = overlaps.max(1);
            var takes = gtMaxAssignAll
                ? overlaps == gtMax.unsqueeze(1)
                : arange(n, device: device).unsqueeze(0) == gtArgmax.unsqueeze(1);
            takes = takes & (gtMax >= MinPosIou).unsqueeze(1);
            // The last gt (in the loop's order) that takes a prior wins: the largest i + 1 over the gts.
            var last = (takes.to(int64) * arange(1, numGts + 1, dtype: int64, device: device).unsqueeze(1)).amax(0);
            gtIndex = where(last > 0, last, gtIndex);
        }
        var labels = where(gtIndex > 0, gtLabels.to(int64).index_select(0, (gtIndex - 1).clamp_min(0)), full(n, -1L, dtype: int64, device: device));
        return MaxIouAssignment(gtIndex, maxOverlaps, labels);
    }

    static MaxIouAssignment MaxIouAssignment(Tensor gtIndex, Tensor maxOverlaps, Tensor labels) =>
        new(gtIndex.MoveToOuterDisposeScope(), maxOverlaps.MoveToOuterDisposeScope(), labels.MoveToOuterDisposeScope());
}
