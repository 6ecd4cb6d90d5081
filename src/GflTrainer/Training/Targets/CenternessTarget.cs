using static TorchSharp.torch;

namespace GflTrainer.Training.Targets;

/// <summary>FCOS/ATSS centerness target (mmdetection <c>ATSSHead.centerness_target</c>): for a prior's centre at
/// distances l, t, r, b from its gt's sides, sqrt(min(l, r)/max(l, r) · min(t, b)/max(t, b)), 1 at the gt's centre and
/// 0 on its border. ATSS positives have their centre inside the gt, so every factor is in (0, 1].</summary>
internal static class CenternessTarget
{
    /// <param name="priors">(n, 4) xyxy of positive priors.</param>
    /// <param name="gtBoxes">(n, 4) xyxy of their assigned gts.</param>
    /// <returns>(n,) in [0, 1].</returns>
    public static Tensor Compute(Tensor priors, Tensor gtBoxes)
    {
        using var scope = NewDisposeScope();
        var cx = (priors[TensorIndex.Colon, 2] + priors[TensorIndex.Colon, 0]) / 2;
        var cy = (priors[TensorIndex.Colon, 3] + priors[TensorIndex.Colon, 1]) / 2;
        var leftRight = stack([cx - gtBoxes[TensorIndex.Colon, 0], gtBoxes[TensorIndex.Colon, 2] - cx], 1);
        var topBottom = stack([cy - gtBoxes[TensorIndex.Colon, 1], gtBoxes[TensorIndex.Colon, 3] - cy], 1);
        var ratio = leftRight.amin(1) / leftRight.amax(1) * (topBottom.amin(1) / topBottom.amax(1));
        return ratio.sqrt().MoveToOuterDisposeScope();
    }
}
