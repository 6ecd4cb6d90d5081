namespace GflTrainer.Data.Transforms;

/// <summary>The per-image part of mmdetection's pipeline: Resize (keep ratio, scale drawn from
/// <paramref name="scales"/>), then RandomFlip with probability <paramref name="flipProbability"/> (0 for
/// evaluation). Random draws, in order: scale (only when several), flip.</summary>
internal sealed class DetectionTransform(MultiScale scales, double flipProbability)
{
    public MultiScale Scales { get; } = scales;
    public double FlipProbability { get; } = flipProbability;

    public static DetectionTransform Train(MultiScale? scales = null) => new(scales ?? MultiScale.Single, 0.5);
    public static DetectionTransform Eval(ResizeScale? scale = null) => new(new MultiScale([scale ?? ResizeScale.Coco]), 0.0);

    /// <summary>Runs on a loader worker thread: plain arrays only, no tensors (see <see cref="PixelBufferPool"/> for
    /// who returns the pixel arrays).</summary>
    public TransformedSample Apply(RgbImage image, DatasetEntry entry, Random rng)
    {
        var scale = Scales.Pick(rng);
        bool flip = FlipProbability > 0 && rng.NextDouble() < FlipProbability;
        var (newW, newH, scaleW, scaleH) = Resize.Rescale(image.Width, image.Height, scale);

        var pixels = Resize.Image(image, newW, newH, flip).Pixels;

        var boxes = (float[])entry.Boxes.Clone();
        var ignored = (float[])entry.IgnoredBoxes.Clone();
        Resize.Boxes(boxes, scaleW, scaleH, newW, newH);
        Resize.Boxes(ignored, scaleW, scaleH, newW, newH);
        if (flip)
        {
            RandomFlip.Boxes(boxes, newW);
            RandomFlip.Boxes(ignored, newW);
        }
        var meta = new ImageMeta(entry.ImageId, entry.FileName, image.Height, image.Width, newH, newW,
            PadHeight: newH, PadWidth: newW, scaleW, scaleH, flip);
        return new TransformedSample(pixels, newH, newW, boxes, (long[])entry.Labels.Clone(), ignored, meta);
    }
}
