using GflTrainer.Model;
using static TorchSharp.torch;

namespace GflTrainer.Training.Targets;

/// <summary>What a head's target builder (<see cref="GflTargetBuilder"/> for gfl and atss, <see cref="MaxIouTargetBuilder"/>
/// for retinanet) tells about one image without building the batch's targets: how many anchors each ground truth
/// is given, and the batch's targets (<see cref="Build"/>). <c>gfl data stats</c> reads anchor coverage through it, from the builder the training
/// loss holds, so the count cannot drift from what training assigns.</summary>
internal interface IAnchorTargetBuilder
{
    /// <summary>The anchor generator the builder lays its anchors with.</summary>
    AnchorGenerator Anchors { get; }

    /// <summary>Number of foreground classes; also the background label.</summary>
    int NumClasses { get; }

    /// <summary>The batch's per-anchor targets as the reference assigns them.</summary>
    /// <param name="featmapSizes">(h, w) of every level, P3 first.</param>
    /// <param name="gtBoxes">per image (G_i, 4) float32 xyxy pixels.</param>
    /// <param name="gtLabels">per image (G_i,) int64 in 0..C−1.</param>
    /// <param name="imagePadShapes">per image its own padded (H, W) (not the batch's).</param>
    /// <param name="device">where the targets live.</param>
    GflTargets Build(IReadOnlyList<(int H, int W)> featmapSizes, IReadOnlyList<Tensor> gtBoxes, IReadOnlyList<Tensor> gtLabels,
        IReadOnlyList<(int H, int W)> imagePadShapes, Device device);

    /// <summary>Positive anchors per ground truth of one image, from the same valid anchors and assignment as the
    /// builder's <c>Build</c>.</summary>
    /// <param name="anchors"><see cref="AnchorGenerator.AllGridAnchors"/> of <paramref name="featmapSizes"/> (a caller measuring many
    /// images of one padded shape lays them out once).</param>
    /// <param name="featmapSizes">(h, w) of every level, P3 first.</param>
    /// <param name="imagePadShape">the image's own padded (H, W).</param>
    /// <param name="gtBoxes">(G, 4) xyxy pixels of the resized image.</param>
    /// <param name="gtLabels">(G,) int64 in 0..C−1.</param>
    /// <returns>(G,) int64.</returns>
    Tensor PositivesPerGt(Tensor anchors, IReadOnlyList<(int H, int W)> featmapSizes, (int H, int W) imagePadShape, Tensor gtBoxes, Tensor gtLabels);
}
