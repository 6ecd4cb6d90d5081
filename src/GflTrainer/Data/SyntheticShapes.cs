using System.Text.Json;
using SkiaSharp;

namespace GflTrainer.Data;

/// <summary>Options of <see cref="SyntheticShapes.Write"/>.</summary>
public sealed record SyntheticShapesOptions
{
    public int Seed { get; init; } = 0;
    public int TrainImages { get; init; } = 200;
    public int ValImages { get; init; } = 50;
    public int ImageSize { get; init; } = 320;
    public int MinShapes { get; init; } = 1;
    public int MaxShapes { get; init; } = 4;
    /// <summary>Shape bounding-box side range in pixels.</summary>
    public int MinSide { get; init; } = 30;
    public int MaxSide { get; init; } = 150;
    public bool Png { get; init; }
}

/// <summary>A small, learnable COCO-format detection set: one filled shape per object, class = shape and colour
/// together (rectangle red, ellipse green, triangle blue), 1-4 objects per image on a noisy grey background, boxes
/// overlapping each other by at most IoU 0.3. Every byte depends only on the seed (own RNG, fixed encoder settings,
/// no antialiasing), so a quickstart run is reproducible. Layout:
/// <c>DIR/images/{train,val}/NNNNNN.jpg</c>, <c>DIR/annotations/instances_{train,val}.json</c>.</summary>
public static class SyntheticShapes
{
    static readonly string[] Names = ["rectangle", "ellipse", "triangle"];
    static readonly SKColor[] Colours = [new(220, 40, 40), new(40, 190, 60), new(50, 80, 230)];

    /// <summary>Writes the data set and returns the number of boxes written per split.</summary>
    public static (int TrainBoxes, int ValBoxes) Write(string outDir, SyntheticShapesOptions? options = null)
    {
        var o = options ?? new SyntheticShapesOptions();
        o = o with { MaxSide = Math.Min(o.MaxSide, o.ImageSize) };   // small images: shapes up to the full side
        if (o.ImageSize < 64 || o.MinSide < 4 || o.MaxSide < o.MinSide || o.MinShapes < 0 || o.MaxShapes < o.MinShapes)
            throw new GflConfigException("synthetic shapes: need image size >= 64, 4 <= min side <= max side <= image size, 0 <= min shapes <= max shapes");
        Directory.CreateDirectory(Path.Combine(outDir, "annotations"));
        int train = WriteSplit(outDir, "train", o.TrainImages, firstImageId: 1, new Random(o.Seed), o);
        int val = WriteSplit(outDir, "val", o.ValImages, firstImageId: o.TrainImages + 1, new Random(o.Seed + 1_000_003), o);
        return (train, val);
    }

    static int WriteSplit(string outDir, string split, int count, int firstImageId, Random rng, SyntheticShapesOptions o)
    {
        var imgDir = Path.Combine(outDir, "images", split);
        Directory.CreateDirectory(imgDir);
        var ext = o.Png ? "png" : "jpg";
        var annPath = Path.Combine(outDir, "annotations", $"instances_{split}.json");
        using var stream = new FileStream(annPath, FileMode.Create, FileAccess.Write);
        using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = false });
        json.WriteStartObject();
        json.WriteStartObject("info");
        json.WriteString("description", $"gfl synthetic shapes, seed {o.Seed}, split {split}");
        json.WriteEndObject();

        var annotations = new List<(long ImageId, int Cat, SKRect Box)>();
        json.WriteStartArray("images");
        for (int k = 0; k < count; k++)
        {
            long imageId = firstImageId + k;
            var fileName = $"{split}/{imageId:D6}.{ext}";
            var boxes = DrawImage(Path.Combine(outDir, "images", fileName), rng, o);
            foreach (var (cat, box) in boxes) annotations.Add((imageId, cat, box));
            json.WriteStartObject();
            json.WriteNumber("id", imageId);
            json.WriteString("file_name", fileName);
            json.WriteNumber("width", o.ImageSize);
            json.WriteNumber("height", o.ImageSize);
            json.WriteEndObject();
        }
        json.WriteEndArray();

        json.WriteStartArray("annotations");
        for (int i = 0; i < annotations.Count; i++)
        {
            var (imageId, cat, b) = annotations[i];
            json.WriteStartObject();
            json.WriteNumber("id", i + 1);
            json.WriteNumber("image_id", imageId);
            json.WriteNumber("category_id", cat + 1);
            json.WriteStartArray("bbox");
            json.WriteNumberValue((int)b.Left); json.WriteNumberValue((int)b.Top);
            json.WriteNumberValue((int)b.Width); json.WriteNumberValue((int)b.Height);
            json.WriteEndArray();
            json.WriteNumber("area", (int)b.Width * (int)b.Height);
            json.WriteNumber("iscrowd", 0);
            json.WriteEndObject();
        }
        json.WriteEndArray();

        json.WriteStartArray("categories");
        for (int c = 0; c < Names.Length; c++)
        {
            json.WriteStartObject();
            json.WriteNumber("id", c + 1);
            json.WriteString("name", Names[c]);
            json.WriteString("supercategory", "shape");
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteEndObject();
        return annotations.Count;
    }

    static List<(int Cat, SKRect Box)> DrawImage(string path, Random rng, SyntheticShapesOptions o)
    {
        int size = o.ImageSize;
        using var bitmap = new SKBitmap(new SKImageInfo(size, size, SKColorType.Rgba8888, SKAlphaType.Opaque));
        // Noisy background: a random mid-grey base with per-pixel uniform noise of +-24.
        var pixels = new byte[size * size * 4];
        int baseLevel = rng.Next(90, 170);
        for (int i = 0; i < size * size; i++)
        {
            int v = Math.Clamp(baseLevel + rng.Next(-24, 25), 0, 255);
            pixels[4 * i] = pixels[4 * i + 1] = pixels[4 * i + 2] = (byte)v;
            pixels[4 * i + 3] = 255;
        }
        System.Runtime.InteropServices.Marshal.Copy(pixels, 0, bitmap.GetPixels(), pixels.Length);

        var placed = new List<(int Cat, SKRect Box)>();
        int wanted = rng.Next(o.MinShapes, o.MaxShapes + 1);
        using (var canvas = new SKCanvas(bitmap))
        using (var paint = new SKPaint { IsAntialias = false, Style = SKPaintStyle.Fill })
        {
            for (int attempt = 0; attempt < wanted * 20 && placed.Count < wanted; attempt++)
            {
                int w = rng.Next(o.MinSide, o.MaxSide + 1), h = rng.Next(o.MinSide, o.MaxSide + 1);
                int x = rng.Next(0, size - w + 1), y = rng.Next(0, size - h + 1);
                int cat = rng.Next(Names.Length);
                var box = new SKRect(x, y, x + w, y + h);
                if (placed.Any(p => Iou(p.Box, box) > 0.3f)) continue;
                var c = Colours[cat];
                // Small colour jitter keeps the task about shape+colour, not one exact RGB value.
                paint.Color = new SKColor(Jitter(c.Red, rng), Jitter(c.Green, rng), Jitter(c.Blue, rng));
                switch (cat)
                {
                    case 0: canvas.DrawRect(box, paint); break;
                    case 1: canvas.DrawOval(box, paint); break;
                    default:
                        using (var tri = new SKPath())
                        {
                            tri.MoveTo(x + w / 2f, y);
                            tri.LineTo(x + w, y + h);
                            tri.LineTo(x, y + h);
                            tri.Close();
                            canvas.DrawPath(tri, paint);
                        }
                        break;
                }
                placed.Add((cat, box));
            }
        }
        using var image = SKImage.FromBitmap(bitmap);
        using var encoded = o.Png ? image.Encode(SKEncodedImageFormat.Png, 100) : image.Encode(SKEncodedImageFormat.Jpeg, 90);
        using var fs = new FileStream(path, FileMode.Create, FileAccess.Write);
        encoded.SaveTo(fs);
        return placed;
    }

    static byte Jitter(byte v, Random rng) => (byte)Math.Clamp(v + rng.Next(-15, 16), 0, 255);

    static float Iou(SKRect a, SKRect b)
    {
        var inter = SKRect.Intersect(a, b);
        float i = inter.IsEmpty ? 0 : inter.Width * inter.Height;
        return i / (a.Width * a.Height + b.Width * b.Height - i);
    }
}
