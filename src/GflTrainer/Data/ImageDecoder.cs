using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SkiaSharp;

namespace GflTrainer.Data;

/// <summary>Decodes JPEG/PNG/BMP/WebP/GIF files with SkiaSharp to RGB uint8 HWC, matching what mmdetection gets from
/// <c>cv2.imread(path, IMREAD_COLOR)</c> (converted BGR -> RGB by Normalize):
/// <list type="bullet">
/// <item>grayscale -> R = G = B; CMYK JPEG -> RGB by libjpeg-turbo's conversion (Adobe-inverted CMYK handled by Skia;
/// cv2 converts the same way but rounding may differ by 1);</item>
/// <item>PNG/WebP alpha is dropped without compositing (decoded unpremultiplied, as IMREAD_COLOR drops it);</item>
/// <item>16-bit PNGs are reduced to 8 bits by Skia (cv2 keeps the high byte; values may differ by 1);</item>
/// <item>no colour management: embedded ICC profiles are ignored (the destination has no colour space), as in cv2;</item>
/// <item>EXIF orientation is applied (cv2's IMREAD_COLOR applies it unless IMREAD_IGNORE_ORIENTATION), so a
/// 4000x3000 photo tagged "rotate 90" comes out 3000x4000.</item>
/// </list>
/// Truncated or corrupt files throw <see cref="ImageDecodeException"/> (cv2 would return a partly grey image).</summary>
internal static class ImageDecoder
{
    public static RgbImage Decode(string file)
    {
        byte[] bytes;
        try { bytes = File.ReadAllBytes(file); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ImageDecodeException(file, e is FileNotFoundException or DirectoryNotFoundException ? "file not found" : e.Message);
        }
        return Decode(bytes, file);
    }

    public static RgbImage Decode(byte[] bytes, string file)
    {
        using var data = SKData.CreateCopy(bytes);
        using var codec = SKCodec.Create(data) ?? throw NotDecodable(data, file);
        // BGRA is Skia's native order on little-endian x86 (the cheapest conversion out of libjpeg-turbo); the
        // swizzle below drops alpha and reorders to RGB in one pass.
        var info = new SKImageInfo(codec.Info.Width, codec.Info.Height, SKColorType.Bgra8888, SKAlphaType.Unpremul);
        var bgra = BgraBuffer(info.BytesSize);
        SKCodecResult result;
        unsafe
        {
            fixed (byte* p = bgra) result = codec.GetPixels(info, (IntPtr)p);
        }
        if (result == SKCodecResult.IncompleteInput) throw new ImageDecodeException(file, "truncated file (incomplete image data)");
        if (result != SKCodecResult.Success) throw new ImageDecodeException(file, $"decoder error ({result})");
        var rgb = PixelBufferPool.Rent(info.Width * info.Height * 3);
        BgraToRgb(bgra, rgb, info.Width * info.Height);
        return ApplyOrientation(new RgbImage(rgb, info.Height, info.Width), codec.EncodedOrigin);
    }

    /// <summary>Width and height as <see cref="Decode(string)"/> would return them (EXIF orientation 5..8 swaps
    /// the sides), read from the file header without decoding pixels: what a converter needs for thousands of
    /// images. A truncated pixel stream passes here; <c>gfl data check</c> decodes fully and finds it.</summary>
    public static (int Width, int Height) ReadSize(string file)
    {
        if (!File.Exists(file)) throw new ImageDecodeException(file, "file not found");
        using var codec = SKCodec.Create(file, out var result);
        if (codec is null)
            throw new ImageDecodeException(file, result == SKCodecResult.IncompleteInput
                ? "truncated file (incomplete header)" : $"not a supported image ({result})");
        int w = codec.Info.Width, h = codec.Info.Height;
        return (int)codec.EncodedOrigin >= 5 ? (h, w) : (w, h);
    }

    /// <summary>The reason Skia gives for refusing a file (only on failure: the stream overload reports it).</summary>
    static ImageDecodeException NotDecodable(SKData data, string file)
    {
        using var stream = new SKMemoryStream(data);
        using var codec = SKCodec.Create(stream, out var result);
        return new ImageDecodeException(file, result == SKCodecResult.IncompleteInput
            ? "truncated file (incomplete header)" : $"not a supported image ({result})");
    }

    [ThreadStatic] static byte[]? _bgra;

    /// <summary>Per-thread scratch for the decoder's BGRA output (it never leaves <see cref="Decode(byte[], string)"/>),
    /// so a loader worker does not allocate and fault in a fresh large array per image.</summary>
    static byte[] BgraBuffer(int size)
    {
        if (_bgra == null || _bgra.Length < size) _bgra = GC.AllocateUninitializedArray<byte>(size);
        return _bgra;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static unsafe void BgraToRgb(byte[] bgra, byte[] rgb, int pixels)
    {
        fixed (byte* s = bgra, d = rgb)
        {
            int i = 0;
            if (Ssse3.IsSupported)
            {
                // 4 pixels per step: 16 bytes in, 12 out (a 16-byte store whose last 4 bytes the next step overwrites,
                // so it stops 2 steps before the end).
                var order = Vector128.Create((byte)2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, 0x80, 0x80, 0x80, 0x80);
                for (; i + 8 <= pixels; i += 4)
                    Ssse3.Shuffle(Sse2.LoadVector128(s + 4 * i), order).Store(d + 3 * i);
            }
            for (; i < pixels; i++)
            {
                d[3 * i] = s[4 * i + 2];
                d[3 * i + 1] = s[4 * i + 1];
                d[3 * i + 2] = s[4 * i];
            }
        }
    }

    /// <summary>EXIF orientation 1..8 (TIFF tag 274) -> upright image. For output pixel (x', y') the source pixel is
    /// given per orientation; 5..8 swap width and height.</summary>
    internal static RgbImage ApplyOrientation(RgbImage img, SKEncodedOrigin origin)
    {
        if (origin == SKEncodedOrigin.TopLeft) return img;
        int w = img.Width, h = img.Height;
        bool swap = (int)origin >= 5;
        int ow = swap ? h : w, oh = swap ? w : h;
        var src = img.Pixels;
        var dst = PixelBufferPool.Rent(src.Length);
        for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++)
        {
            var (sx, sy) = origin switch
            {
                SKEncodedOrigin.TopRight => (w - 1 - x, y),               // 2: mirror horizontal
                SKEncodedOrigin.BottomRight => (w - 1 - x, h - 1 - y),    // 3: rotate 180
                SKEncodedOrigin.BottomLeft => (x, h - 1 - y),             // 4: mirror vertical
                SKEncodedOrigin.LeftTop => (y, x),                        // 5: transpose
                SKEncodedOrigin.RightTop => (y, h - 1 - x),               // 6: rotate 90 clockwise
                SKEncodedOrigin.RightBottom => (w - 1 - y, h - 1 - x),    // 7: transverse
                SKEncodedOrigin.LeftBottom => (w - 1 - y, x),             // 8: rotate 90 counter-clockwise
                _ => (x, y),
            };
            int s = (sy * w + sx) * 3, d = (y * ow + x) * 3;
            dst[d] = src[s]; dst[d + 1] = src[s + 1]; dst[d + 2] = src[s + 2];
        }
        PixelBufferPool.Return(src);   // only Decode calls this, with its own buffer
        return new RgbImage(dst, oh, ow);
    }
}
