using static TorchSharp.torch;

namespace GflTrainer.Data.Transforms;

/// <summary>The per-image part of mmdetection's pipeline: Resize (keep ratio, scale drawn from
/// <paramref name="scales"/>), then RandomFlip with probability <paramref name="flipProbability"/> (0 for
/// evaluation). Random draws, in order: scale (only when several), flip. <paramref name="fastResize"/> selects
/// libtorch's uint8 bilinear kernel instead of the cv2-bit-exact one (see <see cref="Resize.ImageFast"/>).</summary>
internal sealed class DetectionTransform(MultiScale scales, double flipProbability, bool fastResize = false)
{
    public MultiScale Scales { get; } = scales;
    public double FlipProbability { get; } = flipProbability;
    public bool FastResize { get; } = fastResize;

    public static DetectionTransform Train(MultiScale? scales = null) => new(scales ?? MultiScale.Single, 0.5);
    public static DetectionTransform Eval(ResizeScale? scale = null, bool fastResize = false) =>
        new(new MultiScale([scale ?? ResizeScale.Coco]), 0.0, fastResize);

    /// <summary>Runs on a loader worker thread; every tensor is freed before it returns.</summary>
    public TransformedSample Apply(RgbImage image, DatasetEntry entry, Random rng)
    {
        var scale = Scales.Pick(rng);
        bool flip = FlipProbability > 0 && rng.NextDouble() < FlipProbability;
        var (newW, newH) = Resize.RescaleSize(image.Width, image.Height, scale);
        float scaleW = (float)newW / image.Width, scaleH = (float)newH / image.Height;

        byte[] pixels;
        using (NewDisposeScope())
        {
            // (1, H, W, 3) -> permuted view (1, 3, H, W) with channels-last strides: no copy before the resize.
            var hwc = tensor(image.Pixels, [1, image.Height, image.Width, 3]);
            var resized = FastResize ? Resize.ImageFast(hwc.permute(0, 3, 1, 2), newW, newH)
                                     : Resize.Image(hwc.permute(0, 3, 1, 2), newW, newH);
            if (flip) resized = RandomFlip.Image(resized);
            var outHwc = resized.permute(0, 2, 3, 1).contiguous();
            pixels = outHwc.bytes.ToArray();   // one memcpy (data<T>().ToArray() copies element by element)
        }

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
