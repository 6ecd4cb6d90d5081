using TorchSharp;
using static TorchSharp.torch;

namespace GflTrainer.Data.Transforms;

/// <summary>Keep-ratio resize as mmdetection's <c>Resize(img_scale=(1333, 800), keep_ratio=True)</c> with mmcv
/// <c>imrescale</c>: factor f = min(long/max(w,h), short/min(w,h)), new size = (int(w·f + 0.5), int(h·f + 0.5)),
/// boxes × (new_w/w, new_h/h) then clipped to the new image (bbox_clip_border=True).
///
/// Pixels: bilinear with half-pixel centres, src = (dst + 0.5)·(in/out) − 0.5 clamped at 0 — the formula of cv2
/// INTER_LINEAR and of torch <c>interpolate(bilinear, align_corners=False, antialias=False)</c>, for up- and
/// down-scaling alike (neither antialiases). It runs on the uint8 image in channels-last layout (libtorch's
/// vectorised uint8 path) and stays uint8, as mmcv returns uint8 for uint8 input. Known differences to cv2:
/// cv2 quantises the interpolation weights to 11 bits and rounds in fixed point, libtorch uses more bits, so single
/// pixels may differ by 1 grey level; cv2 also switches INTER_LINEAR to INTER_AREA for an exact 2x/2x downscale
/// (identical result for that case: the 2x2 mean with weights 0.5).</summary>
internal static class Resize
{
    public static (int Width, int Height) RescaleSize(int width, int height, ResizeScale scale)
    {
        double f = Math.Min((double)scale.LongEdge / Math.Max(width, height), (double)scale.ShortEdge / Math.Min(width, height));
        return ((int)(width * f + 0.5), (int)(height * f + 0.5));
    }

    /// <summary>Resizes an image.</summary>
    /// <param name="image">(1, 3, H, W) uint8, any layout (channels-last is fastest).</param>
    /// <returns>(1, 3, newHeight, newWidth) uint8 on the input's device.</returns>
    public static Tensor Image(Tensor image, int newWidth, int newHeight)
    {
        if (image.shape[2] == newHeight && image.shape[3] == newWidth) return image.alias();
        return nn.functional.interpolate(image, size: [newHeight, newWidth], mode: InterpolationMode.Bilinear, align_corners: false);
    }

    /// <summary>Scales xyxy boxes by (scaleW, scaleH) and clips them to [0, width] × [0, height], in place.</summary>
    public static void Boxes(float[] boxes, float scaleW, float scaleH, int width, int height)
    {
        for (int i = 0; i < boxes.Length; i += 4)
        {
            boxes[i] = Math.Clamp(boxes[i] * scaleW, 0, width);
            boxes[i + 1] = Math.Clamp(boxes[i + 1] * scaleH, 0, height);
            boxes[i + 2] = Math.Clamp(boxes[i + 2] * scaleW, 0, width);
            boxes[i + 3] = Math.Clamp(boxes[i + 3] * scaleH, 0, height);
        }
    }
}
