namespace GflTrainer.Data;

/// <summary>One image with its parsed ground truth, in original-image pixels.</summary>
/// <param name="Boxes">G*4 floats, xyxy = COCO [x, y, x + w, y + h] (no -1, as mmdetection).</param>
/// <param name="Labels">G contiguous labels (see <see cref="CategoryMap"/>).</param>
/// <param name="IgnoredBoxes">K*4 floats, xyxy of iscrowd=1 regions.</param>
internal sealed record DatasetEntry(long ImageId, string FileName, int Width, int Height,
    float[] Boxes, long[] Labels, float[] IgnoredBoxes)
{
    public int BoxCount => Labels.Length;
}
