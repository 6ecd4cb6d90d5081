using GflTrainer.Data;
using SkiaSharp;

namespace GflTrainer.Reporting;

/// <summary>A box to draw, in the picture's pixels (xyxy). <paramref name="Label"/> null: no caption.</summary>
/// <param name="ColourIndex">the category's contiguous label: the same colour as in the run's plots.</param>
/// <param name="Dashed">ground truth is dashed, predictions solid, so both read apart on one picture.</param>
public readonly record struct DrawnBox(float X1, float Y1, float X2, float Y2, string? Label, int ColourIndex, bool Dashed = false);

/// <summary>Boxes with captions drawn on images, for <c>gfl predict</c>'s pictures and the evaluation mosaic: one look,
/// the plots' category colours (<see cref="Charts.PaletteHex"/>), the embedded font.</summary>
public static class DetectionDrawing
{
    static readonly SKColor[] Palette = Charts.PaletteHex.Select(SKColor.Parse).ToArray();

    public static SKColor Colour(int index) => Palette[index % Palette.Length];

    internal static SKBitmap ToBitmap(RgbImage image)
    {
        var bitmap = new SKBitmap(new SKImageInfo(image.Width, image.Height, SKColorType.Rgba8888, SKAlphaType.Opaque));
        var rgba = new byte[image.Width * image.Height * 4];
        for (int i = 0, j = 0; i < image.Pixels.Length; i += 3, j += 4)
        {
            rgba[j] = image.Pixels[i]; rgba[j + 1] = image.Pixels[i + 1]; rgba[j + 2] = image.Pixels[i + 2]; rgba[j + 3] = 255;
        }
        System.Runtime.InteropServices.Marshal.Copy(rgba, 0, bitmap.GetPixels(), rgba.Length);
        return bitmap;
    }

    /// <summary>Draws on a canvas whose picture is <paramref name="width"/> x <paramref name="height"/>; stroke and
    /// caption size follow the picture's size. Captioned boxes are drawn in the given order (callers put the highest
    /// score last, on top).</summary>
    public static void Draw(SKCanvas canvas, int width, int height, IEnumerable<DrawnBox> boxes)
    {
        float stroke = Math.Max(2f, Math.Min(width, height) / 300f);
        using var font = new SKFont(EmbeddedFont.Typeface, Math.Max(12f, Math.Min(width, height) / 40f));
        using var dash = SKPathEffect.CreateDash([3 * stroke, 2 * stroke], 0);
        foreach (var b in boxes)
        {
            var colour = Colour(b.ColourIndex);
            using var pen = new SKPaint { Color = colour, Style = SKPaintStyle.Stroke, StrokeWidth = stroke, IsAntialias = true };
            if (b.Dashed) pen.PathEffect = dash;
            canvas.DrawRect(SKRect.Create(b.X1, b.Y1, b.X2 - b.X1, b.Y2 - b.Y1), pen);
            if (b.Label is null) continue;
            float w = font.MeasureText(b.Label);
            float h = font.Size * 1.25f;
            float y = b.Y1 - h >= 0 ? b.Y1 - h : b.Y1;
            float x = Math.Max(0, Math.Min(b.X1, width - (w + 6)));   // keep the caption inside the picture
            using var fill = new SKPaint { Color = colour, Style = SKPaintStyle.Fill };
            canvas.DrawRect(SKRect.Create(x, y, w + 6, h), fill);
            using var ink = new SKPaint { Color = SKColors.White, IsAntialias = true };
            canvas.DrawText(b.Label, x + 3, y + font.Size, SKTextAlign.Left, font, ink);
        }
    }

    /// <summary>The image with the boxes drawn, as JPEG (quality 92), written atomically.</summary>
    internal static void SaveJpeg(string path, RgbImage image, IEnumerable<DrawnBox> boxes)
    {
        using var bitmap = ToBitmap(image);
        using (var canvas = new SKCanvas(bitmap)) Draw(canvas, image.Width, image.Height, boxes);
        Encode(bitmap, path);
    }

    internal static void Encode(SKBitmap bitmap, string path, int quality = 92)
    {
        using var img = SKImage.FromBitmap(bitmap);
        using var data = img.Encode(SKEncodedImageFormat.Jpeg, quality);
        var tmp = path + ".tmp";
        using (var fs = File.Create(tmp)) data.SaveTo(fs);
        File.Move(tmp, path, overwrite: true);
    }
}
