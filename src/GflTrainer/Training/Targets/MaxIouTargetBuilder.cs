using GflTrainer.Model;
using static TorchSharp.torch;

namespace GflTrainer.Training.Targets;

/// <summary>
/// RetinaNet's per-anchor targets (mmdetection <c>AnchorHead.get_targets</c> with PseudoSampler, allowed_border −1,
/// pos_weight −1): valid flags from each image's own padded shape, <see cref="MaxIouAssigner"/> on the valid anchors,
/// then positives take their gt's label and box, negatives the background label with weight 1, and anchors ignored by
/// the assigner (IoU between the thresholds) or invalid get weight 0. The result has GFL's layout
/// (<see cref="GflTargets"/>), so the losses read it the same way.
/// </summary>
internal sealed class MaxIouTargetBuilder(AnchorGenerator anchorGenerator, MaxIouAssigner assigner, int numClasses) : IAnchorTargetBuilder
{
    /// <summary>Number of foreground classes; also the background label.</summary>
    public int NumClasses { get; } = numClasses;

    public AnchorGenerator Anchors => anchorGenerator;

    public Tensor PositivesPerGt(Tensor anchors, IReadOnlyList<(int H, int W)> featmapSizes, (int H, int W) imagePadShape, Tensor gtBoxes, Tensor gtLabels)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var device = gtBoxes.device;
        var (_, _, assignment) = AssignImage(anchors, featmapSizes, imagePadShape, gtBoxes.to(float32), gtLabels.to(int64), device);
        // GtIndex is i + 1 for positives of gt i (0 negative, −1 ignored).
        return (assignment.GtIndex.masked_select(assignment.GtIndex > 0) - 1).bincount(null, gtBoxes.shape[0]).MoveToOuterDisposeScope();
    }

    /// <summary>One image's valid anchors (flags, their indices) and the MaxIoU assignment on them: the part of
    /// <see cref="Build"/> that decides the positives, shared with <see cref="PositivesPerGt"/>.</summary>
    private (Tensor Valid, Tensor ValidIndex, MaxIouAssignment Assignment) AssignImage(Tensor anchors,
        IReadOnlyList<(int H, int W)> featmapSizes, (int H, int W) imagePadShape, Tensor boxes, Tensor labels, Device device)
    {
        var (valid, validIndex) = anchorGenerator.Valid(featmapSizes, imagePadShape, device);
        return (valid, validIndex, assigner.Assign(anchors.index_select(0, validIndex), boxes, labels));
    }

    /// <param name="featmapSizes">(h, w) of every level, P3 first.</param>
    /// <param name="gtBoxes">per image (G_i, 4) float32 xyxy pixels.</param>
    /// <param name="gtLabels">per image (G_i,) int64 in 0..C−1.</param>
    /// <param name="imagePadShapes">per image its own padded (H, W).</param>
    public GflTargets Build(IReadOnlyList<(int H, int W)> featmapSizes, IReadOnlyList<Tensor> gtBoxes, IReadOnlyList<Tensor> gtLabels,
        IReadOnlyList<(int H, int W)> imagePadShapes, Device device)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var anchorsPerLevel = featmapSizes.Select(s => (long)s.H * s.W * anchorGenerator.AnchorsPerLocation).ToArray();
        var anchors = anchorGenerator.AllGridAnchors(featmapSizes, device);
        var numAnchors = anchors.shape[0];

        var validRows = new List<Tensor>();
        var labelRows = new List<Tensor>();
        var weightRows = new List<Tensor>();
        var boxRows = new List<Tensor>();
        var positiveRows = new List<Tensor>();
        for (var i = 0; i < imagePadShapes.Count; i++)
        {
            var boxes = gtBoxes[i].to(float32, device);
            var (valid, validIndex, assignment) = AssignImage(anchors, featmapSizes, imagePadShapes[i], boxes, gtLabels[i].to(int64, device), device);
            var isPositive = assignment.GtIndex > 0;
            var labels = full(numAnchors, NumClasses, dtype: int64, device: device);
            var weights = zeros(numAnchors, dtype: float32, device: device);
            var boxTargets = zeros(numAnchors, 4, dtype: float32, device: device);
            labels.index_copy_(0, validIndex, where(isPositive, assignment.Labels, full_like(assignment.Labels, NumClasses)));
            weights.index_copy_(0, validIndex, (assignment.GtIndex >= 0).to(float32));   // positives and negatives
            if (boxes.shape[0] > 0)
                boxTargets.index_copy_(0, validIndex,
                    boxes.index_select(0, (assignment.GtIndex - 1).clamp_min(0)) * isPositive.unsqueeze(1).to(float32));
            positiveRows.Add(isPositive);
            validRows.Add(valid);
            labelRows.Add(labels);
            weightRows.Add(weights);
            boxRows.Add(boxTargets);
        }
        return GflTargets.Stack(featmapSizes, anchors, anchorsPerLevel, validRows, labelRows, weightRows, boxRows, positiveRows);
    }
}
