using TorchSharp;
using static TorchSharp.torch;

// Runs on loader threads: only pinned Scalars (see PinnedScalars), never implicit ones.

namespace GflTrainer.Data.Transforms;

/// <summary>Keep-ratio resize as mmdetection's <c>Resize(img_scale=(1333, 800), keep_ratio=True)</c> with mmcv
/// <c>imrescale</c>: factor f = min(long/max(w,h), short/min(w,h)), new size = (int(w·f + 0.5), int(h·f + 0.5)),
/// boxes × (new_w/w, new_h/h) then clipped to the new image (bbox_clip_border=True).
///
/// Pixels reproduce <c>cv2.resize(img, (w, h), interpolation=INTER_LINEAR)</c> on uint8 bit for bit (checked
/// against OpenCV 4.6 on the BCCD images, up- and down-scaling, see docs/performance-data.md): bilinear with
/// half-pixel centres, src = (dst + 0.5)·scale − 0.5 (the formula torch's interpolate(bilinear, align_corners=False,
/// antialias=False) uses too; neither antialiases when shrinking), but in OpenCV's fixed point:
/// <list type="bullet">
/// <item>weights rounded to 11 bits (×2048); along x the source index and weight are clamped at the borders, along y
/// only the row index is (so a border row mixes the same row with weights like 410/1638);</item>
/// <item>horizontal pass in int32: S[x0]·a0 + S[x1]·a1; vertical pass as OpenCV's SIMD kernel
/// (VResizeLinearVec_32s8u): (((R0 ≫ 4)·b0 ≫ 16) + ((R1 ≫ 4)·b1 ≫ 16) + 2) ≫ 2, saturated to uint8;</item>
/// <item>an exact 2× downscale in both axes is INTER_AREA in OpenCV: (a + b + c + d + 2) ≫ 2.</item>
/// </list>
/// A plain float bilinear (torch interpolate) differs from cv2 by one grey level on ~10% of the values.</summary>
internal static class Resize
{
    const int CoefScale = 2048;   // OpenCV INTER_RESIZE_COEF_BITS = 11

    public static (int Width, int Height) RescaleSize(int width, int height, ResizeScale scale)
    {
        double f = Math.Min((double)scale.LongEdge / Math.Max(width, height), (double)scale.ShortEdge / Math.Min(width, height));
        return ((int)(width * f + 0.5), (int)(height * f + 0.5));
    }

    /// <summary>Resizes an image as cv2 INTER_LINEAR does (see the class summary).</summary>
    /// <param name="image">(1, 3, H, W) uint8, any layout.</param>
    /// <returns>(1, 3, newHeight, newWidth) uint8 on the input's device.</returns>
    public static Tensor Image(Tensor image, int newWidth, int newHeight)
    {
        int h = (int)image.shape[2], w = (int)image.shape[3];
        if (h == newHeight && w == newWidth) return image.alias();
        using var scope = NewDisposeScope();
        var hwc = image[0].permute(1, 2, 0).to_type(ScalarType.Int32);   // (H, W, 3)
        Tensor result;
        if (w == 2 * newWidth && h == 2 * newHeight)
        {
            var quads = hwc.reshape(newHeight, 2, newWidth, 2, 3).sum([1, 3], type: ScalarType.Int32);
            result = quads.add_(PinnedScalars.Two, PinnedScalars.One).bitwise_right_shift_(tensor(2, ScalarType.Int32, image.device));
        }
        else
        {
            var device = image.device;
            var (x0, x1, a0, a1) = Weights(w, newWidth, clampWeights: true);
            var (y0, y1, b0, b1) = Weights(h, newHeight, clampWeights: false);
            // Horizontal pass: (H, newW, 3) int32 in units of 1/2048.
            var ax0 = tensor(a0, device: device).view(1, -1, 1);
            var ax1 = tensor(a1, device: device).view(1, -1, 1);
            var rows = hwc.index_select(1, tensor(x0, device: device)).mul(ax0)
                .add_(hwc.index_select(1, tensor(x1, device: device)).mul(ax1), PinnedScalars.One);
            // Vertical pass, OpenCV's 16-bit SIMD arithmetic .
            var by0 = tensor(b0, device: device).view(-1, 1, 1);
            var by1 = tensor(b1, device: device).view(-1, 1, 1);
            var shift4 = tensor(4, ScalarType.Int32, device);
            var shift16 = tensor(16, ScalarType.Int32, device);
            var top = rows.index_select(0, tensor(y0, device: device)).bitwise_right_shift_(shift4).mul_(by0).bitwise_right_shift_(shift16);
            var bottom = rows.index_select(0, tensor(y1, device: device)).bitwise_right_shift_(shift4).mul_(by1).bitwise_right_shift_(shift16);
            result = top.add_(bottom, PinnedScalars.One).add_(PinnedScalars.Two, PinnedScalars.One).bitwise_right_shift_(tensor(2, ScalarType.Int32, device));
        }
        var output = result.clamp_(PinnedScalars.Zero, PinnedScalars.Max8Bit).to_type(ScalarType.Byte).permute(2, 0, 1).unsqueeze(0);
        return output.MoveToOuterDisposeScope();
    }

    /// <summary>Source indices and 11-bit weights along one axis, as OpenCV's resize computes them: the source
    /// coordinate in float32 from a double scale of 1 / (out/in).</summary>
    /// <summary>libtorch's uint8 bilinear resize (half-pixel centres, no antialiasing) on the channels-last input: one
    /// pass, several times faster than <see cref="Image"/>, but computed in float rather than cv2's 11-bit fixed point,
    /// so a minority of output values differ from cv2 (and mmdetection) by one grey level. Opt-in
    /// (<c>data.resize_backend: fast</c>).</summary>
    /// <param name="image">(1, 3, H, W) uint8, typically a channels-last view.</param>
    public static Tensor ImageFast(Tensor image, int newWidth, int newHeight)
    {
        int h = (int)image.shape[2], w = (int)image.shape[3];
        if (h == newHeight && w == newWidth) return image.alias();
        return nn.functional.interpolate(image, size: new long[] { newHeight, newWidth }, mode: InterpolationMode.Bilinear,
            align_corners: false, antialias: false);
    }

    static (long[] I0, long[] I1, int[] W0, int[] W1) Weights(int inSize, int outSize, bool clampWeights)
    {
        double scale = 1.0 / ((double)outSize / inSize);
        var i0 = new long[outSize];
        var i1 = new long[outSize];
        var w0 = new int[outSize];
        var w1 = new int[outSize];
        for (int d = 0; d < outSize; d++)
        {
            float f = (float)((d + 0.5) * scale - 0.5);
            int s = (int)MathF.Floor(f);
            f -= s;
            if (clampWeights)
            {
                if (s < 0) { f = 0; s = 0; }
                if (s >= inSize - 1) { f = 0; s = inSize - 1; }
            }
            i0[d] = Math.Clamp(s, 0, inSize - 1);
            i1[d] = Math.Clamp(s + 1, 0, inSize - 1);
            w0[d] = (int)Math.Round((1f - f) * CoefScale, MidpointRounding.ToEven);
            w1[d] = (int)Math.Round(f * CoefScale, MidpointRounding.ToEven);
        }
        return (i0, i1, w0, w1);
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
