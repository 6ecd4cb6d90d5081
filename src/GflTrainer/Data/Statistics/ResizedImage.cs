using GflTrainer.Data.Transforms;

namespace GflTrainer.Data.Statistics;

/// <summary>An image's ground truth as the network receives it: the size after the configured keep-ratio resize and
/// the boxes scaled and clipped by <see cref="Resize"/>, the same calls <see cref="DetectionTransform"/> makes (the
/// pixels are not decoded: the annotation file's width and height are enough).</summary>
/// <param name="Boxes">G*4 xyxy, resized pixels.</param>
/// <param name="Labels">G contiguous labels.</param>
/// <param name="CrowdBoxes">K*4 xyxy of iscrowd regions, resized (not targets: training passes no ignored boxes to
/// the loss).</param>
internal sealed record ResizedImage(long ImageId, int Width, int Height, float[] Boxes, long[] Labels, float[] CrowdBoxes)
{
    public int BoxCount => Labels.Length;

    public static ResizedImage From(DatasetEntry entry, ResizeScale scale)
    {
        var (newW, newH, scaleW, scaleH) = Resize.Rescale(entry.Width, entry.Height, scale);
        var boxes = (float[])entry.Boxes.Clone();
        var crowd = (float[])entry.IgnoredBoxes.Clone();
        Resize.Boxes(boxes, scaleW, scaleH, newW, newH);
        Resize.Boxes(crowd, scaleW, scaleH, newW, newH);
        return new ResizedImage(entry.ImageId, newW, newH, boxes, entry.Labels, crowd);
    }

    /// <summary>Width and height of box <paramref name="i"/>.</summary>
    public (double W, double H) BoxSize(int i) => (Boxes[4 * i + 2] - Boxes[4 * i], Boxes[4 * i + 3] - Boxes[4 * i + 1]);
}
