using static TorchSharp.torch;

namespace GflTrainer.Boxes;

/// <summary>
/// mmdetection <c>DistancePointBBoxCoder</c>: a box is the distances (left, top, right, bottom) from a point to its
/// sides. Units are whatever the caller uses (GFL trains in stride units and decodes pixels at test time).
/// </summary>
internal static class DistancePointBoxCoder
{
    /// <summary><c>distance2bbox</c>: (x − l, y − t, x + r, y + b), optionally clamped to the image.</summary>
    /// <param name="points">(n, 2) x, y.</param>
    /// <param name="distances">(n, 4) l, t, r, b.</param>
    /// <param name="maxShape">(H, W) of the resized image before padding: x is clamped to [0, W], y to [0, H]
    /// (mmdetection ≥ 2.0 clamps to W, not W − 1). Null: no clamp (training).</param>
    /// <returns>(n, 4) xyxy.</returns>
    public static Tensor Decode(Tensor points, Tensor distances, (int H, int W)? maxShape = null)
    {
        using var scope = NewDisposeScope();
        var x = points[TensorIndex.Colon, 0];
        var y = points[TensorIndex.Colon, 1];
        var x1 = x - distances[TensorIndex.Colon, 0];
        var y1 = y - distances[TensorIndex.Colon, 1];
        var x2 = x + distances[TensorIndex.Colon, 2];
        var y2 = y + distances[TensorIndex.Colon, 3];
        if (maxShape is { } shape)
        {
            x1 = x1.clamp(0, shape.W);
            x2 = x2.clamp(0, shape.W);
            y1 = y1.clamp(0, shape.H);
            y2 = y2.clamp(0, shape.H);
        }
        return stack(new[] { x1, y1, x2, y2 }, -1).MoveToOuterDisposeScope();
    }

    /// <summary><c>bbox2distance</c>: distances from each point to its box's sides, clamped to
    /// [0, maxDistance − eps].</summary>
    /// <param name="points">(n, 2).</param>
    /// <param name="boxes">(n, 4) xyxy.</param>
    /// <param name="maxDistance">reg_max (16) for DFL targets.</param>
    /// <param name="eps">The reference keeps targets at most reg_max − 0.1 so that floor(y) + 1 is still a valid bin
    /// (the bound is computed in double and applied in float32: 15.8999996).</param>
    /// <returns>(n, 4) l, t, r, b.</returns>
    public static Tensor Encode(Tensor points, Tensor boxes, double maxDistance, double eps = 0.1)
    {
        using var scope = NewDisposeScope();
        var x = points[TensorIndex.Colon, 0];
        var y = points[TensorIndex.Colon, 1];
        var distances = stack(new[]
        {
            x - boxes[TensorIndex.Colon, 0],
            y - boxes[TensorIndex.Colon, 1],
            boxes[TensorIndex.Colon, 2] - x,
            boxes[TensorIndex.Colon, 3] - y,
        }, -1);
        return distances.clamp(0, maxDistance - eps).MoveToOuterDisposeScope();
    }
}
