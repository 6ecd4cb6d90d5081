using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace GflTrainer.Data.Transforms;

/// <summary>Keep-ratio resize as mmdetection's <c>Resize(img_scale=(1333, 800), keep_ratio=True)</c> with mmcv
/// <c>imrescale</c>: factor f = min(long/max(w,h), short/min(w,h)), new size = (int(w·f + 0.5), int(h·f + 0.5)),
/// boxes × (new_w/w, new_h/h) then clipped to the new image (bbox_clip_border=True).
///
/// Pixels reproduce <c>cv2.resize(img, (w, h), interpolation=INTER_LINEAR)</c> on uint8 bit for bit (checked
/// against OpenCV 4.6, tests/.../Fixtures/data/cv2_resize): bilinear with half-pixel centres,
/// src = (dst + 0.5)·scale − 0.5 (the formula torch's interpolate(bilinear, align_corners=False, antialias=False)
/// uses too; neither antialiases when shrinking), but in OpenCV's fixed point:
/// <list type="bullet">
/// <item>weights rounded to 11 bits (×2048); along x the source index and weight are clamped at the borders, along y
/// only the row index is (so a border row mixes the same row with weights like 410/1638);</item>
/// <item>horizontal pass in int32: S[x0]·a0 + S[x1]·a1; vertical pass as OpenCV's SIMD kernel
/// (VResizeLinearVec_32s8u): (((R0 ≫ 4)·b0 ≫ 16) + ((R1 ≫ 4)·b1 ≫ 16) + 2) ≫ 2, saturated to uint8;</item>
/// <item>an exact 2× downscale in both axes is INTER_AREA in OpenCV: (a + b + c + d + 2) ≫ 2.</item>
/// </list>
/// A plain float bilinear (torch interpolate) differs from cv2 by one grey level on ~10% of the values.
///
/// The kernel is plain C# on the loader thread, organised as OpenCV's: each source row is filtered horizontally
/// once (two row buffers, rows are visited in order) with one pmaddwd per pixel, and the vertical pass runs on int16
/// with pmulhw, 32 values per AVX2 step, as OpenCV's own SIMD kernels; plain scalar code elsewhere. A horizontal flip is folded into the horizontal tables, so
/// RandomFlip costs nothing extra.</summary>
internal static class Resize
{
    const int CoefScale = 2048;   // OpenCV INTER_RESIZE_COEF_BITS = 11

    public static (int Width, int Height) RescaleSize(int width, int height, ResizeScale scale)
    {
        double f = Math.Min((double)scale.LongEdge / Math.Max(width, height), (double)scale.ShortEdge / Math.Min(width, height));
        return ((int)(width * f + 0.5), (int)(height * f + 0.5));
    }

    /// <summary>The resized size and the box scale factors (new/old per axis) of a <paramref name="width"/> ×
    /// <paramref name="height"/> image: what <see cref="DetectionTransform"/> applies to pixels and boxes, and what
    /// <c>gfl data stats</c> measures boxes with, so both read one computation.</summary>
    public static (int Width, int Height, float ScaleW, float ScaleH) Rescale(int width, int height, ResizeScale scale)
    {
        var (newW, newH) = RescaleSize(width, height, scale);
        return (newW, newH, (float)newW / width, (float)newH / height);
    }

    /// <summary>Resizes (and, with <paramref name="flip"/>, mirrors horizontally) an RGB image as cv2 INTER_LINEAR
    /// followed by cv2.flip(img, 1) does; see the class summary.</summary>
    public static RgbImage Image(RgbImage image, int newWidth, int newHeight, bool flip = false)
    {
        if (newWidth < 1 || newHeight < 1) throw new ArgumentOutOfRangeException(nameof(newWidth), $"resize to {newWidth}x{newHeight}");
        var output = PixelBufferPool.Rent(newHeight * newWidth * 3);   // every byte is written
        if (image.Width == 2 * newWidth && image.Height == 2 * newHeight) Area2x(image, output, newWidth, newHeight, flip);
        else Linear(image, output, newWidth, newHeight, flip);
        return new RgbImage(output, newHeight, newWidth);
    }

    static unsafe void Linear(RgbImage image, byte[] output, int newW, int newH, bool flip)
    {
        int w = image.Width, h = image.Height, rowLen = newW * 3;
        var (x0, x1, a0, a1) = Weights(w, newW, clampWeights: true);
        var (y0, y1, b0, b1) = Weights(h, newH, clampWeights: false);
        // Per output pixel: byte offsets of its two source pixels and the weight pair (a1 << 16 | a0). Flip: output x
        // reads what the unflipped output W−1−x would.
        var ofs0 = new int[newW]; var ofs1 = new int[newW]; var pair = new int[newW];
        for (int x = 0; x < newW; x++)
        {
            int s = flip ? newW - 1 - x : x;
            ofs0[x] = 3 * x0[s]; ofs1[x] = 3 * x1[s]; pair[x] = (a1[s] << 16) | a0[s];
        }
        // A source row is copied into a buffer with slack (each pixel is read as 4 bytes); filtered rows hold
        // R ≫ 4 as int16 (≤ 255·2048 ≫ 4 = 32640), what OpenCV's vertical SIMD kernel multiplies, plus slack for the
        // horizontal kernel's 4-value stores.
        var srcRow = new byte[w * 3 + 4];
        var rowA = new short[rowLen + 4];
        var rowB = new short[rowLen + 4];
        fixed (byte* src = image.Pixels, dst = output, sr = srcRow)
        fixed (int* po0 = ofs0, po1 = ofs1, pp = pair)
        fixed (short* sa = rowA, sb = rowB)
        {
            // Two filtered rows (source rows ia, ib); rows are needed in increasing order, so a missing row replaces
            // the older one (or the one the current output row does not use).
            int ia = -1, ib = -1;
            for (int y = 0; y < newH; y++)
            {
                int ty = y0[y], by = y1[y];
                if (ty != ia && ty != ib)
                {
                    if (ia <= ib) { Horizontal(src + (long)ty * w * 3, w, sr, sa, po0, po1, pp, newW); ia = ty; }
                    else { Horizontal(src + (long)ty * w * 3, w, sr, sb, po0, po1, pp, newW); ib = ty; }
                }
                if (by != ia && by != ib)
                {
                    if (ia == ty) { Horizontal(src + (long)by * w * 3, w, sr, sb, po0, po1, pp, newW); ib = by; }
                    else { Horizontal(src + (long)by * w * 3, w, sr, sa, po0, po1, pp, newW); ia = by; }
                }
                Vertical(ia == ty ? sa : sb, ia == by ? sa : sb, (short)b0[y], (short)b1[y], dst + (long)y * rowLen, rowLen);
            }
        }
    }

    /// <summary>One source row: D[x, c] = (S[x0, c]·a0 + S[x1, c]·a1) ≫ 4 for every output pixel. With SSE4.1 one
    /// pixel's three channels are one pmaddwd of the interleaved (S[x0, c], S[x1, c]) words with (a0, a1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static unsafe void Horizontal(byte* srcRow, int width, byte* buffer, short* dst, int* ofs0, int* ofs1, int* pair, int newW)
    {
        Buffer.MemoryCopy(srcRow, buffer, width * 3 + 4, width * 3);
        if (Sse41.IsSupported)
        {
            for (int x = 0; x < newW; x++)
            {
                var p0 = Vector128.CreateScalarUnsafe(*(int*)(buffer + ofs0[x])).AsByte();
                var p1 = Vector128.CreateScalarUnsafe(*(int*)(buffer + ofs1[x])).AsByte();
                var words = Sse41.ConvertToVector128Int16(Sse2.UnpackLow(p0, p1));
                var sums = Sse2.ShiftRightArithmetic(Sse2.MultiplyAddAdjacent(words, Vector128.Create(pair[x]).AsInt16()), 4);
                // Four int16 stored, the fourth (junk) overwritten by the next pixel or landing in the slack.
                *(long*)(dst + 3 * x) = Sse2.PackSignedSaturate(sums, sums).AsInt64().ToScalar();
            }
            return;
        }
        for (int x = 0; x < newW; x++)
        {
            int o0 = ofs0[x], o1 = ofs1[x], a0 = pair[x] & 0xFFFF, a1 = pair[x] >> 16;
            for (int c = 0; c < 3; c++) dst[3 * x + c] = (short)((buffer[o0 + c] * a0 + buffer[o1 + c] * a1) >> 4);
        }
    }

    /// <summary>One output row: (((R0 ≫ 4)·b0 ≫ 16) + ((R1 ≫ 4)·b1 ≫ 16) + 2) ≫ 2 saturated to uint8, as OpenCV's
    /// VResizeLinearVec_32s8u (pmulhw on int16), 32 values per AVX2 step.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static unsafe void Vertical(short* r0, short* r1, short b0, short b1, byte* dst, int n)
    {
        int k = 0;
        if (Avx2.IsSupported)
        {
            var vb0 = Vector256.Create(b0); var vb1 = Vector256.Create(b1); var two = Vector256.Create((short)2);
            for (; k + 32 <= n; k += 32)
            {
                var lo = Mix(r0 + k, r1 + k, vb0, vb1, two);
                var hi = Mix(r0 + k + 16, r1 + k + 16, vb0, vb1, two);
                // packuswb works per 128-bit lane: (lo.0, hi.0, lo.1, hi.1) -> reorder the 64-bit quarters.
                Avx2.Permute4x64(Avx2.PackUnsignedSaturate(lo, hi).AsInt64(), 0b11_01_10_00).AsByte().Store(dst + k);
            }
        }
        for (; k < n; k++)
            dst[k] = (byte)Math.Clamp((((r0[k] * b0) >> 16) + ((r1[k] * b1) >> 16) + 2) >> 2, 0, 255);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static unsafe Vector256<short> Mix(short* r0, short* r1, Vector256<short> b0, Vector256<short> b1, Vector256<short> two) =>
        Avx2.ShiftRightArithmetic(Avx2.Add(Avx2.Add(Avx2.MultiplyHigh(Avx.LoadVector256(r0), b0), Avx2.MultiplyHigh(Avx.LoadVector256(r1), b1)), two), 2);

    /// <summary>OpenCV's INTER_AREA for an exact 2× reduction: the rounded mean of each 2×2 block.</summary>
    static void Area2x(RgbImage image, byte[] output, int newW, int newH, bool flip)
    {
        int w = image.Width;
        var s = image.Pixels;
        for (int y = 0; y < newH; y++)
        {
            int top = 2 * y * w * 3, bottom = top + w * 3;
            for (int x = 0; x < newW; x++)
            {
                int d = (y * newW + (flip ? newW - 1 - x : x)) * 3, l = 6 * x;
                for (int c = 0; c < 3; c++)
                    output[d + c] = (byte)((s[top + l + c] + s[top + l + 3 + c] + s[bottom + l + c] + s[bottom + l + 3 + c] + 2) >> 2);
            }
        }
    }

    /// <summary>Source indices and 11-bit weights along one axis, as OpenCV's resize computes them: the source
    /// coordinate in float32 from a double scale of 1 / (out/in).</summary>
    static (int[] I0, int[] I1, int[] W0, int[] W1) Weights(int inSize, int outSize, bool clampWeights)
    {
        double scale = 1.0 / ((double)outSize / inSize);
        var i0 = new int[outSize];
        var i1 = new int[outSize];
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
