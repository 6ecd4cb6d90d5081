using static TorchSharp.torch;

namespace GflTrainer.Boxes;

/// <summary>Which overlap <see cref="BoxOverlaps"/> computes.</summary>
internal enum OverlapMode
{
    /// <summary>Intersection over union.</summary>
    Iou,
    /// <summary>Intersection over the area of the first box (mmdetection "iof").</summary>
    Iof,
    /// <summary>Generalized IoU (Rezatofighi et al. 2019): IoU − (enclosure − union) / enclosure.</summary>
    Giou,
}

/// <summary>
/// mmdetection <c>bbox_overlaps</c> for xyxy boxes without "+1": areas are (x2−x1)(y2−y1) with no correction of
/// inverted boxes; <c>eps</c> is a lower clamp (<c>max(union, eps)</c>, <c>max(enclosure, eps)</c>), not an addend; the
/// GIoU penalty uses the clamped union. Built from differentiable ops (the QFL target and GIoU loss need gradients).
/// Clamps use <c>torch.maximum</c> with an eps tensor like the reference, so gradients at ties split the same way.
/// </summary>
internal static class BoxOverlaps
{
    /// <summary>mmdetection's default eps for bbox_overlaps, GIoULoss and the QFL target.</summary>
    public const double DefaultEps = 1e-6;

    /// <summary>Overlap of every box of <paramref name="boxes1"/> with every box of <paramref name="boxes2"/>.</summary>
    /// <param name="boxes1">(M, 4) xyxy.</param>
    /// <param name="boxes2">(N, 4) xyxy, same units.</param>
    /// <returns>(M, N) float.</returns>
    public static Tensor Pairwise(Tensor boxes1, Tensor boxes2, OverlapMode mode = OverlapMode.Iou, double eps = DefaultEps) =>
        Compute(boxes1.unsqueeze(1), boxes2.unsqueeze(0), mode, eps);

    /// <summary>Overlap of row i of <paramref name="boxes1"/> with row i of <paramref name="boxes2"/>.</summary>
    /// <param name="boxes1">(K, 4) xyxy.</param>
    /// <param name="boxes2">(K, 4) xyxy.</param>
    /// <returns>(K,) float.</returns>
    public static Tensor Aligned(Tensor boxes1, Tensor boxes2, OverlapMode mode = OverlapMode.Iou, double eps = DefaultEps) =>
        Compute(boxes1, boxes2, mode, eps);

    // Both inputs broadcast to a common (..., 4) shape; the last dimension holds x1, y1, x2, y2. Coordinates are
    // taken one at a time so every intermediate has the broadcast (M, N) shape rather than (M, N, 2) with strided
    // halves (about 2x fewer bytes touched); each element sees the same operations in the same order as
    // mmdetection's bbox_overlaps, so values and gradients are unchanged.
    private static Tensor Compute(Tensor b1, Tensor b2, OverlapMode mode, double eps)
    {
        using var scope = NewDisposeScope();
        Tensor C(Tensor b, int i) => b[TensorIndex.Ellipsis, i];
        var (ax1, ay1, ax2, ay2) = (C(b1, 0), C(b1, 1), C(b1, 2), C(b1, 3));
        var (bx1, by1, bx2, by2) = (C(b2, 0), C(b2, 1), C(b2, 2), C(b2, 3));
        var area1 = (ax2 - ax1) * (ay2 - ay1);
        var area2 = (bx2 - bx1) * (by2 - by1);

        var w = (minimum(ax2, bx2) - maximum(ax1, bx1)).clamp_min(0);
        var h = (minimum(ay2, by2) - maximum(ay1, by1)).clamp_min(0);
        var overlap = w * h;
        var union = mode == OverlapMode.Iof ? area1 : area1 + area2 - overlap;
        // A fill on the device: a tensor made from a host number may be copied up, and such a copy waits for the device.
        var epsTensor = full(Array.Empty<long>(), (float)eps, dtype: union.dtype, device: union.device);
        union = maximum(union, epsTensor);
        var ious = overlap / union;
        if (mode != OverlapMode.Giou) return ious.MoveToOuterDisposeScope();

        var ew = (maximum(ax2, bx2) - minimum(ax1, bx1)).clamp_min(0);
        var eh = (maximum(ay2, by2) - minimum(ay1, by1)).clamp_min(0);
        var enclosedArea = maximum(ew * eh, epsTensor);
        return (ious - (enclosedArea - union) / enclosedArea).MoveToOuterDisposeScope();
    }

    private static Tensor Area(Tensor boxes) =>
        (boxes[TensorIndex.Ellipsis, 2] - boxes[TensorIndex.Ellipsis, 0]) *
        (boxes[TensorIndex.Ellipsis, 3] - boxes[TensorIndex.Ellipsis, 1]);
}
