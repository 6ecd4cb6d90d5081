using GflTrainer.Coco;
using GflTrainer.Data;
using SkiaSharp;

namespace GflTrainer.Reporting;

/// <summary>A grid of evaluation images with ground truth (dashed) and predictions (solid, name and score), the picture
/// a practitioner looks at first. The images are spread evenly over the split (the same ones at every evaluation of a
/// run, so epochs compare cell by cell).</summary>
public static class DetectionMosaic
{
    const int CellWidth = 480, CellHeight = 360, Caption = 22;

    /// <returns><paramref name="path"/>.</returns>
    public static string Write(string path, CocoGroundTruth groundTruth, IReadOnlyList<CocoDetection> detections,
        Func<long, string?> imagePath, int images, double scoreThreshold)
    {
        var ids = groundTruth.ImageIds;
        int n = Math.Min(images, ids.Count);
        var picked = Enumerable.Range(0, n).Select(i => ids[(int)((long)i * ids.Count / n)]).ToList();
        var label = new Dictionary<long, int>();
        for (int i = 0; i < groundTruth.Categories.Count; i++) label[groundTruth.Categories[i].Id] = i;
        var names = groundTruth.Categories.ToDictionary(c => c.Id, c => c.Name);
        var gtByImage = groundTruth.Annotations.ToLookup(a => a.ImageId);
        var dtByImage = detections.Where(d => d.Score >= scoreThreshold).ToLookup(d => d.ImageId);

        int cols = (int)Math.Ceiling(Math.Sqrt(n)), rows = (n + cols - 1) / cols;
        const int legend = 28;
        using var mosaic = new SKBitmap(new SKImageInfo(cols * CellWidth, legend + rows * (CellHeight + Caption), SKColorType.Rgba8888, SKAlphaType.Opaque));
        using var canvas = new SKCanvas(mosaic);
        canvas.Clear(new SKColor(40, 40, 40));
        using var font = new SKFont(EmbeddedFont.Typeface, 14);
        using var ink = new SKPaint { Color = SKColors.White, IsAntialias = true };
        canvas.DrawText($"dashed: ground truth; solid: predictions with score >= {scoreThreshold:0.##}", 8, 19, SKTextAlign.Left, font, ink);
        for (int i = 0; i < n; i++)
        {
            long id = picked[i];
            float x0 = i % cols * CellWidth, y0 = legend + i / cols * (CellHeight + Caption);
            var file = imagePath(id);
            string caption = file is null ? $"image {id}" : Path.GetFileName(file);
            RgbImage? image = null;
            try { if (file is not null) image = ImageDecoder.Decode(file); }
            catch (Exception e) when (e is ImageDecodeException or IOException) { caption += " (unreadable)"; }
            if (image is not null)
            {
                float scale = Math.Min((float)CellWidth / image.Width, (float)CellHeight / image.Height);
                int w = Math.Max(1, (int)(image.Width * scale)), h = Math.Max(1, (int)(image.Height * scale));
                using var full = DetectionDrawing.ToBitmap(image);
                using var small = full.Resize(new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Opaque), new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear));
                using (var cell = new SKCanvas(small))
                {
                    var boxes = gtByImage[id].Where(g => label.ContainsKey(g.CategoryId))
                        .Select(g => Scaled(g.X, g.Y, g.Width, g.Height, scale, null, label[g.CategoryId], dashed: true))
                        .Concat(dtByImage[id].Where(d => label.ContainsKey(d.CategoryId)).OrderBy(d => d.Score)
                            .Select(d => Scaled(d.X, d.Y, d.Width, d.Height, scale, $"{names[d.CategoryId]} {d.Score:0.00}", label[d.CategoryId], dashed: false)));
                    DetectionDrawing.Draw(cell, w, h, boxes);
                }
                canvas.DrawBitmap(small, x0 + (CellWidth - w) / 2f, y0 + (CellHeight - h) / 2f);
            }
            int gts = gtByImage[id].Count(g => !g.IsCrowd), dts = dtByImage[id].Count();
            canvas.DrawText($"{caption}  gt {gts}, pred {dts}", x0 + 6, y0 + CellHeight + 16, SKTextAlign.Left, font, ink);
        }
        DetectionDrawing.Encode(mosaic, path, quality: 88);
        return path;
    }

    static DrawnBox Scaled(double x, double y, double w, double h, float s, string? label, int colour, bool dashed) =>
        new((float)(x * s), (float)(y * s), (float)((x + w) * s), (float)((y + h) * s), label, colour, dashed);
}
