using GflTrainer.Model;
using static TorchSharp.torch;

namespace GflTrainer.Training.Targets;

/// <summary>Per-anchor training targets of a batch (mmdetection GFLHead.get_targets with PseudoSampler).</summary>
/// <param name="Anchors">(A, 4) float32 xyxy pixels, levels concatenated P3 first (the same for every image).</param>
/// <param name="AnchorsPerLevel">A_l of each level.</param>
/// <param name="ValidFlags">(N, A) bool: the anchor lies over the image's own padded shape.</param>
/// <param name="Labels">(N, A) int64 gt class of positives, numClasses (background) elsewhere.</param>
/// <param name="LabelWeights">(N, A) float32: 1 for valid anchors, 0 for invalid anchors (and for negatives over
/// ignored regions when ignored boxes were given).</param>
/// <param name="BoxTargets">(N, A, 4) float32 assigned gt box in pixels, 0 for non-positives.</param>
/// <param name="PositivesPerImage">number of positive anchors of each image.</param>
internal sealed record GflTargets(
    Tensor Anchors,
    IReadOnlyList<long> AnchorsPerLevel,
    Tensor ValidFlags,
    Tensor Labels,
    Tensor LabelWeights,
    Tensor BoxTargets,
    IReadOnlyList<long> PositivesPerImage) : IDisposable
{
    /// <summary>(h, w) of every level the targets were laid out for; null when not recorded (hand-made targets).</summary>
    public IReadOnlyList<(int H, int W)>? FeatmapSizes { get; init; }

    /// <summary>The positives' rows in the losses' level-major layout (<c>LevelRows</c>), ascending, when they were found
    /// on the host with the targets (<c>HostTargets</c>), so the loss needs no <c>nonzero</c>; null: the loss finds them.</summary>
    public Tensor? PositiveRows { get; init; }

    /// <summary>When <see cref="PositiveRows"/> was padded to a fixed capacity (<see cref="Losses.HostTargets"/>, so that a
    /// step's shapes depend on the image shape alone, as a replayed CUDA graph needs): (capacity,) float32, 1 for each
    /// real positive, then 0 for each pad (a repeat of the first positive). The losses weigh the positives' sums by it
    /// (<see cref="Losses.LevelRows.LevelMask"/>); null: not padded.</summary>
    public Tensor? PositiveMask { get; init; }

    /// <summary><see cref="ClassificationAvgFactor"/> as a 0-d float64 tensor made with targets built ahead, so the step
    /// takes its normaliser from a tensor (a replayed CUDA graph would keep a number filled in at capture); null: the
    /// loss fills it from the number.</summary>
    public Tensor? ClassificationNormaliser { get; init; }

    /// <summary>The number of real positives: <see cref="PositiveRows"/> without its padding.</summary>
    public long PositiveCount => PositivesPerImage.Sum();

    /// <summary>These targets if they were laid out for <paramref name="batch"/> images and <paramref name="featmapSizes"/>
    /// (built ahead of the step from the padded shape, <see cref="AnchorGenerator.FeatmapSizes"/>), else null: the loss
    /// then builds its own.</summary>
    public static GflTargets? For(GflTargets? built, long batch, IReadOnlyList<(int H, int W)> featmapSizes) =>
        built is { FeatmapSizes: { } sizes } && built.Labels.shape[0] == batch && sizes.SequenceEqual(featmapSizes) ? built : null;

    public void Dispose()
    {
        Anchors.Dispose();
        ValidFlags.Dispose();
        Labels.Dispose();
        LabelWeights.Dispose();
        BoxTargets.Dispose();
        PositiveRows?.Dispose();
        PositiveMask?.Dispose();
        ClassificationNormaliser?.Dispose();
    }

    /// <summary>mmdetection 3.x classification normaliser: Σ over images of max(num_pos, 1) (SamplingResult clamps
    /// each image's num_pos to 1, so an image without positives still adds 1).</summary>
    public double ClassificationAvgFactor => PositivesPerImage.Sum(p => (double)Math.Max(p, 1));

    /// <summary>The batch's targets from per-image rows, moved out of the builder's dispose scope.</summary>
    /// <param name="positiveRows">per image its (A,) bool positives: counted on the device and read in one transfer.</param>
    internal static GflTargets Stack(IReadOnlyList<(int H, int W)> featmapSizes, Tensor anchors, IReadOnlyList<long> anchorsPerLevel, IReadOnlyList<Tensor> validRows,
        IReadOnlyList<Tensor> labelRows, IReadOnlyList<Tensor> weightRows, IReadOnlyList<Tensor> boxRows, IReadOnlyList<Tensor> positiveRows)
    {
        var positives = positiveRows.Count == 0 ? []
            : stack(positiveRows.Select(p => p.sum()).ToList(), 0).cpu().data<long>().ToArray();
        var targets = new GflTargets(anchors, anchorsPerLevel, stack(validRows, 0), stack(labelRows, 0),
            stack(weightRows, 0), stack(boxRows, 0), positives) { FeatmapSizes = featmapSizes.ToArray() };
        targets.Anchors.MoveToOuterDisposeScope();
        targets.ValidFlags.MoveToOuterDisposeScope();
        targets.Labels.MoveToOuterDisposeScope();
        targets.LabelWeights.MoveToOuterDisposeScope();
        targets.BoxTargets.MoveToOuterDisposeScope();
        return targets;
    }
}

/// <summary>
/// Builds GFL's per-anchor targets: valid flags from each image's own padded shape, ATSS assignment on the valid
/// anchors only, then labels / label weights / gt boxes scattered back to all anchors (invalid anchors: background,
/// weight 0), as mmdetection's <c>_get_targets_single</c> with <c>allowed_border = −1</c> and <c>pos_weight = −1</c>.
/// </summary>
internal sealed class GflTargetBuilder(AnchorGenerator anchorGenerator, AtssAssigner assigner, int numClasses) : IAnchorTargetBuilder
{
    /// <summary>Number of foreground classes; also the background label.</summary>
    public int NumClasses { get; } = numClasses;

    public AnchorGenerator Anchors => anchorGenerator;

    public Tensor PositivesPerGt(Tensor anchors, IReadOnlyList<(int H, int W)> featmapSizes, (int H, int W) imagePadShape, Tensor gtBoxes, Tensor gtLabels)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var device = gtBoxes.device;
        var (_, _, assignment) = AssignImage(anchors, featmapSizes, imagePadShape, gtBoxes.to(float32), device);
        return assignment.GtIndex.masked_select(assignment.IsPositive).bincount(null, gtBoxes.shape[0]).MoveToOuterDisposeScope();
    }

    /// <summary>One image's valid anchors (flags, their indices) and the ATSS assignment on them: the part of
    /// <see cref="Build"/> that decides the positives, shared with <see cref="PositivesPerGt"/>.</summary>
    private (Tensor Valid, Tensor ValidIndex, AtssAssignment Assignment) AssignImage(Tensor anchors,
        IReadOnlyList<(int H, int W)> featmapSizes, (int H, int W) imagePadShape, Tensor boxes, Device device)
    {
        var validPerLevel = Enumerable.Range(0, featmapSizes.Count).Select(l =>
        {
            var (rows, cols) = anchorGenerator.ValidExtent(l, featmapSizes[l], imagePadShape);
            return (long)rows * cols;
        }).ToArray();
        var (valid, validIndex) = anchorGenerator.Valid(featmapSizes, imagePadShape, device);
        return (valid, validIndex, assigner.Assign(anchors.index_select(0, validIndex), validPerLevel, boxes));
    }

    GflTargets IAnchorTargetBuilder.Build(IReadOnlyList<(int H, int W)> featmapSizes, IReadOnlyList<Tensor> gtBoxes,
        IReadOnlyList<Tensor> gtLabels, IReadOnlyList<(int H, int W)> imagePadShapes, Device device) =>
        Build(featmapSizes, gtBoxes, gtLabels, imagePadShapes, device);

    /// <param name="featmapSizes">(h, w) of every level, P3 first.</param>
    /// <param name="gtBoxes">per image (G_i, 4) float32 xyxy pixels.</param>
    /// <param name="gtLabels">per image (G_i,) int64 in 0..C−1.</param>
    /// <param name="imagePadShapes">per image its own padded (H, W) (not the batch's).</param>
    /// <param name="ignoredBoxes">optional per image (K_i, 4) crowd regions. The reference config ignores them
    /// (ignore_iof_thr = −1: anchors over crowds are ordinary negatives); when given, negatives whose centre lies
    /// strictly inside one get label weight 0. Positives are never changed. Null or empty: reference behaviour.</param>
    /// <param name="device">where the targets live (the head outputs' device).</param>
    public GflTargets Build(
        IReadOnlyList<(int H, int W)> featmapSizes,
        IReadOnlyList<Tensor> gtBoxes,
        IReadOnlyList<Tensor> gtLabels,
        IReadOnlyList<(int H, int W)> imagePadShapes,
        Device device,
        IReadOnlyList<Tensor>? ignoredBoxes = null)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var anchorsPerLevel = featmapSizes.Select(s => (long)s.H * s.W).ToArray();
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
            var classes = gtLabels[i].to(int64, device);
            var (valid, validIndex, assignment) = AssignImage(anchors, featmapSizes, imagePadShapes[i], boxes, device);
            var isPositive = assignment.IsPositive;

            var labels = full(numAnchors, NumClasses, dtype: int64, device: device);
            var boxTargets = zeros(numAnchors, 4, dtype: float32, device: device);
            if (boxes.shape[0] > 0)
            {
                var assignedLabels = where(isPositive, classes.index_select(0, assignment.GtIndex), full_like(assignment.GtIndex, NumClasses));
                var assignedBoxes = boxes.index_select(0, assignment.GtIndex) * isPositive.unsqueeze(1).to(float32);
                labels.index_copy_(0, validIndex, assignedLabels);
                boxTargets.index_copy_(0, validIndex, assignedBoxes);
            }
            var weights = valid.to(float32);
            if (ignoredBoxes is { } ignored && ignored[i].shape[0] > 0)
                weights = weights * (~(InsideAny(AnchorGenerator.Centers(anchors), ignored[i].to(float32, device)) & (labels == NumClasses))).to(float32);

            positiveRows.Add(isPositive);
            validRows.Add(valid);
            labelRows.Add(labels);
            weightRows.Add(weights);
            boxRows.Add(boxTargets);
        }

        return GflTargets.Stack(featmapSizes, anchors, anchorsPerLevel, validRows, labelRows, weightRows, boxRows, positiveRows);
    }

    // (A,) bool: the point lies strictly inside at least one of the boxes.
    private static Tensor InsideAny(Tensor points, Tensor boxes)
    {
        var x = points[TensorIndex.Colon, 0].unsqueeze(1);
        var y = points[TensorIndex.Colon, 1].unsqueeze(1);
        var inside = (x > boxes[TensorIndex.Colon, 0]) & (x < boxes[TensorIndex.Colon, 2]) &
                     (y > boxes[TensorIndex.Colon, 1]) & (y < boxes[TensorIndex.Colon, 3]);
        return inside.any(1);
    }
}
