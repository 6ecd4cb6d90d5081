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

    // Both inputs broadcast to a common (..., 4) shape; the last dimension holds x1, y1, x2, y2.
    private static Tensor Compute(Tensor b1, Tensor b2, OverlapMode mode, double eps)
    {
        using var scope = NewDisposeScope();
        var b1Min = b1[TensorIndex.Ellipsis, TensorIndex.Slice(0, 2)];
        var b1Max = b1[TensorIndex.Ellipsis, TensorIndex.Slice(2, 4)];
        var b2Min = b2[TensorIndex.Ellipsis, TensorIndex.Slice(0, 2)];
        var b2Max = b2[TensorIndex.Ellipsis, TensorIndex.Slice(2, 4)];
        var area1 = Area(b1);
        var area2 = Area(b2);

        var wh = (minimum(b1Max, b2Max) - maximum(b1Min, b2Min)).clamp_min(0);
        var overlap = wh[TensorIndex.Ellipsis, 0] * wh[TensorIndex.Ellipsis, 1];
        var union = mode == OverlapMode.Iof ? area1 : area1 + area2 - overlap;
        var epsTensor = tensor((float)eps, dtype: union.dtype, device: union.device);
        union = maximum(union, epsTensor);
        var ious = overlap / union;
        if (mode != OverlapMode.Giou) return ious.MoveToOuterDisposeScope();

        var enclosedWh = (maximum(b1Max, b2Max) - minimum(b1Min, b2Min)).clamp_min(0);
        var enclosedArea = maximum(enclosedWh[TensorIndex.Ellipsis, 0] * enclosedWh[TensorIndex.Ellipsis, 1], epsTensor);
        return (ious - (enclosedArea - union) / enclosedArea).MoveToOuterDisposeScope();
    }

    private static Tensor Area(Tensor boxes) =>
        (boxes[TensorIndex.Ellipsis, 2] - boxes[TensorIndex.Ellipsis, 0]) *
        (boxes[TensorIndex.Ellipsis, 3] - boxes[TensorIndex.Ellipsis, 1]);
}
