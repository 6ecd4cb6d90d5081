using static TorchSharp.torch;

namespace GflTrainer.Model;

/// <summary>
/// mmdetection <c>AnchorGenerator</c> as configured for GFL: one square anchor per cell (ratio 1, one scale) of side
/// <c>octaveBaseScale · stride</c>, centred on the cell's top-left corner (x·s, y·s) because center_offset is 0.
/// Anchors are row-major per level (index y·w + x), levels concatenated P3 first.
/// </summary>
internal sealed class AnchorGenerator(IReadOnlyList<int> strides, double octaveBaseScale = 8)
{
    /// <summary>Strides of the levels, P3 first (8, 16, 32, 64, 128 for GFL).</summary>
    public IReadOnlyList<int> Strides { get; } = strides;

    /// <summary>The anchor of cell (0, 0): a square of side octaveBaseScale·s centred at the origin.</summary>
    /// <returns>(1, 4) float32 xyxy pixels.</returns>
    public Tensor BaseAnchor(int level, Device? device = null)
    {
        var half = (float)(0.5 * octaveBaseScale * Strides[level]);
        return tensor(new[] { -half, -half, half, half }, dtype: float32, device: device).reshape(1, 4);
    }

    /// <summary>Anchors of one level.</summary>
    /// <param name="featmapSize">(h, w) of that level's feature map.</param>
    /// <returns>(h·w, 4) float32 xyxy pixels, row-major.</returns>
    public Tensor LevelAnchors(int level, (int H, int W) featmapSize, Device? device = null)
    {
        using var scope = NewDisposeScope();
        var stride = Strides[level];
        var shiftX = arange(0, featmapSize.W, dtype: float32, device: device) * stride;
        var shiftY = arange(0, featmapSize.H, dtype: float32, device: device) * stride;
        // x varies fastest, as in the reference's meshgrid(row_major=True).
        var xx = shiftX.repeat(featmapSize.H);
        var yy = shiftY.repeat_interleave(featmapSize.W);
        var shifts = stack(new[] { xx, yy, xx, yy }, -1);
        return (BaseAnchor(level, device) + shifts).MoveToOuterDisposeScope();
    }

    /// <summary>Anchors of every level, P3 first.</summary>
    public IReadOnlyList<Tensor> GridAnchors(IReadOnlyList<(int H, int W)> featmapSizes, Device? device = null) =>
        featmapSizes.Select((size, level) => LevelAnchors(level, size, device)).ToArray();

    /// <summary>How many rows and columns of a level lie over an image whose own padded shape is
    /// <paramref name="padShape"/>: min(ceil(pad/s), feature size), as mmdetection's valid_flags.</summary>
    public (int Rows, int Cols) ValidExtent(int level, (int H, int W) featmapSize, (int H, int W) padShape)
    {
        var stride = Strides[level];
        var rows = Math.Min((padShape.H + stride - 1) / stride, featmapSize.H);
        var cols = Math.Min((padShape.W + stride - 1) / stride, featmapSize.W);
        return (rows, cols);
    }

    /// <summary>Valid flags of one level for one image inside a larger padded batch.</summary>
    /// <returns>(h·w,) bool, row-major.</returns>
    public Tensor ValidFlags(int level, (int H, int W) featmapSize, (int H, int W) padShape, Device? device = null)
    {
        using var scope = NewDisposeScope();
        var (rows, cols) = ValidExtent(level, featmapSize, padShape);
        var validY = arange(featmapSize.H, device: device) < rows;
        var validX = arange(featmapSize.W, device: device) < cols;
        return (validY.unsqueeze(1) & validX.unsqueeze(0)).reshape(-1).MoveToOuterDisposeScope();
    }

    /// <summary>Centre of each anchor box, ((x1 + x2) / 2, (y1 + y2) / 2) as the head's anchor_center.</summary>
    /// <param name="anchors">(n, 4) xyxy.</param>
    /// <returns>(n, 2).</returns>
    public static Tensor Centers(Tensor anchors)
    {
        using var scope = NewDisposeScope();
        var cx = (anchors[TensorIndex.Colon, 2] + anchors[TensorIndex.Colon, 0]) / 2;
        var cy = (anchors[TensorIndex.Colon, 3] + anchors[TensorIndex.Colon, 1]) / 2;
        return stack(new[] { cx, cy }, -1).MoveToOuterDisposeScope();
    }
}
