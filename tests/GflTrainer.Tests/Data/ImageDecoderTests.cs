using GflTrainer.Data;
using SkiaSharp;
using Xunit;

namespace GflTrainer.Tests.Data;

public sealed class ImageDecoderTests : IDisposable
{
    readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    static byte[] Encode(SKBitmap bmp, SKEncodedImageFormat format, int quality = 100)
    {
        using var img = SKImage.FromBitmap(bmp);
        using var data = img.Encode(format, quality);
        return data.ToArray();
    }

    [Fact]
    public void Decode_GrayscalePng_RepeatsTheGreyInRgb()
    {
        using var bmp = new SKBitmap(new SKImageInfo(3, 2, SKColorType.Gray8, SKAlphaType.Opaque));
        bmp.SetPixel(1, 0, new SKColor(77, 77, 77));
        var img = ImageDecoder.Decode(Encode(bmp, SKEncodedImageFormat.Png), "g.png");
        Assert.Equal((2, 3), (img.Height, img.Width));
        Assert.Equal(new byte[] { 77, 77, 77 }, img.Pixels[3..6]);
    }

    [Fact]
    public void Decode_PngWithAlpha_DropsAlphaWithoutCompositing()
    {
        using var bmp = new SKBitmap(new SKImageInfo(2, 1, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        System.Runtime.InteropServices.Marshal.Copy(new byte[] { 200, 100, 50, 0, 10, 20, 30, 128 }, 0, bmp.GetPixels(), 8);
        var img = ImageDecoder.Decode(Encode(bmp, SKEncodedImageFormat.Png), "a.png");
        Assert.Equal(new byte[] { 200, 100, 50, 10, 20, 30 }, img.Pixels);
    }

    /// <summary>Inserts an APP1 Exif segment (little-endian TIFF, one IFD entry: Orientation) after the JPEG SOI.</summary>
    internal static byte[] WithExifOrientation(byte[] jpeg, ushort orientation)
    {
        byte[] tiff = [(byte)'I', (byte)'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, (byte)orientation, 0, 0, 0, 0, 0, 0, 0];
        byte[] exif = [.. "Exif\0\0"u8, .. tiff];
        int len = exif.Length + 2;
        byte[] app1 = [0xFF, 0xE1, (byte)(len >> 8), (byte)len, .. exif];
        return [.. jpeg[..2], .. app1, .. jpeg[2..]];
    }

    [Theory]
    [InlineData(6, 16, 32, true)]    // rotate 90° clockwise: the left (red) half ends on top
    [InlineData(8, 16, 32, false)]   // rotate 90° counter-clockwise: the left half ends at the bottom
    [InlineData(3, 32, 16, false)]   // rotate 180°: red on the right
    public void Decode_AppliesExifOrientation(int orientation, int width, int height, bool redFirst)
    {
        using var bmp = new SKBitmap(new SKImageInfo(32, 16, SKColorType.Rgba8888, SKAlphaType.Opaque));
        using (var canvas = new SKCanvas(bmp))
        {
            canvas.Clear(new SKColor(0, 0, 255));
            using var red = new SKPaint { Color = new SKColor(255, 0, 0) };
            canvas.DrawRect(new SKRect(0, 0, 16, 16), red);
        }
        var jpeg = WithExifOrientation(Encode(bmp, SKEncodedImageFormat.Jpeg), (ushort)orientation);
        var img = ImageDecoder.Decode(jpeg, "exif.jpg");
        Assert.Equal((height, width), (img.Height, img.Width));
        // Pixel in the first and in the last quarter along the long axis.
        int first = width > height ? (height / 2 * width + width / 8) * 3 : (height / 8 * width + width / 2) * 3;
        int last = width > height ? (height / 2 * width + width * 7 / 8) * 3 : (height * 7 / 8 * width + width / 2) * 3;
        byte redAtFirst = img.Pixels[first], redAtLast = img.Pixels[last];
        Assert.True(redFirst ? redAtFirst > 200 && redAtLast < 50 : redAtFirst < 50 && redAtLast > 200, $"{redAtFirst} {redAtLast}");
    }

    [Fact]
    public void Decode_TruncatedOrGarbageFile_ThrowsNamingTheFile()
    {
        using var bmp = new SKBitmap(new SKImageInfo(64, 64, SKColorType.Rgba8888, SKAlphaType.Opaque));
        var noise = new byte[64 * 64 * 4];
        new Random(1).NextBytes(noise);   // incompressible: the cut lands in the scan data, not the header
        System.Runtime.InteropServices.Marshal.Copy(noise, 0, bmp.GetPixels(), noise.Length);
        var jpeg = Encode(bmp, SKEncodedImageFormat.Jpeg);
        var e = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(jpeg[..(jpeg.Length / 2)], "cut.jpg"));
        Assert.Contains("cut.jpg", e.Message);
        Assert.Contains("truncated", e.Message);
        Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode("junk"u8.ToArray(), "junk.jpg"));
        var missing = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(Path.Combine(_dir.Path, "none.jpg")));
        Assert.Contains("file not found", missing.Message);
    }
}
