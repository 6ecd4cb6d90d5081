using System.Text.Json.Nodes;
using GflTrainer.Checkpoints;
using GflTrainer.Data;
using GflTrainer.Data.Transforms;
using GflTrainer.Model;
using GflTrainer.Reporting;
using Serilog;
using SkiaSharp;
using TorchSharp;
using GflTrainer.Runtime;
using static TorchSharp.torch;

namespace GflTrainer.Inference;

/// <summary>What <c>gfl predict</c> asks for.</summary>
/// <param name="Input">an image file or a folder of images (jpg, jpeg, png, bmp, webp; not recursive).</param>
/// <param name="ScoreThreshold">detections below it are neither drawn nor exported.</param>
/// <param name="Onnx">a model written by <c>gfl export</c>, run in ONNX Runtime instead of <paramref name="Checkpoint"/>
/// (which is then ignored).</param>
public sealed record PredictRequest(string Checkpoint, string Input, string OutDir, double ScoreThreshold = 0.3,
    string? ConfigPath = null, IReadOnlyList<string>? Overrides = null, string? Device = null, string? Onnx = null);

/// <summary><c>gfl predict</c>: for each image, a JSON of detections (original pixels, category ids and names) and a
/// copy of the image with boxes, names and scores drawn (embedded font: no system fonts needed).</summary>
public static class PredictRun
{
    private static readonly string[] Extensions = [".jpg", ".jpeg", ".png", ".bmp", ".webp"];

    public static int Execute(PredictRequest request, ILogger log, CancellationToken cancel = default)
    {
        var files = Directory.Exists(request.Input)
            ? Directory.EnumerateFiles(request.Input).Where(f => Extensions.Contains(Path.GetExtension(f).ToLowerInvariant()))
                .OrderBy(f => f, StringComparer.Ordinal).ToList()
            : File.Exists(request.Input) ? [request.Input]
            : throw new GflConfigException($"--input {request.Input}: no such file or folder") { Key = "--input" };
        if (files.Count == 0) throw new GflConfigException($"--input {request.Input}: no images ({string.Join(", ", Extensions)})") { Key = "--input" };

        // The checkpoint through gfl's model, or an exported model through ONNX Runtime (CPU): the same pre- and
        // post-processing either way, so the two can be compared image by image.
        var device = request.Onnx is null ? DeviceSelector.Resolve(request.Device, log) : CPU;
        using var detector = request.Onnx is null ? TrainedDetector.Load(request.Checkpoint, request.ConfigPath, request.Overrides ?? [], device) : null;
        using var onnx = request.Onnx is null ? null : OnnxDetector.Load(request.Onnx, request.ScoreThreshold);
        var data = detector?.Config.Data ?? onnx!.Data;
        var categories = detector?.Categories ?? onnx!.Categories;
        Func<DetectionBatch, Detections> detect;
        if (detector is not null)
        {
            // Export everything above the requested threshold, even when it is below test_cfg's 0.05.
            var post = GflPostprocessor.FromConfig(detector.Config.Model, Math.Min(detector.Config.Model.Test.ScoreThr, request.ScoreThreshold));
            detect = b => post.Predict(detector.Model.forward(b.Images), b.Metas)[0];
        }
        else
            detect = b => onnx!.Predict(b)[0];
        var transform = DataPipelineFactory.EvalTransform(data);
        var collator = DataPipelineFactory.Collator(data, device);
        Directory.CreateDirectory(request.OutDir);
        int failed = 0;
        foreach (var file in files)
        {
            cancel.ThrowIfCancellationRequested();
            RgbImage image;
            try { image = ImageDecoder.Decode(file); }
            catch (Exception e) when (e is ImageDecodeException or IOException)
            {
                log.Error("{File}: {Message}", file, e.Message);
                failed++;
                continue;
            }
            var entry = new DatasetEntry(0, Path.GetFileName(file), image.Width, image.Height, [], [], []);
            var sample = transform.Apply(image, entry, new Random(0));
            List<(float[] Box, float Score, int Label)> found;
            using (var scope = NewDisposeScope())
            using (no_grad())
            using (var batch = collator.Collate([sample]))
            {
                var d = detect(batch);
                found = new();
                var (boxes, scores, labels) = d.ToHost();
                for (int k = 0; k < scores.Length; k++)
                    if (scores[k] >= request.ScoreThreshold) found.Add((boxes[(4 * k)..(4 * k + 4)], scores[k], (int)labels[k]));
            }
            var stem = Path.GetFileNameWithoutExtension(file);
            WriteJson(Path.Combine(request.OutDir, stem + ".json"), file, image, found, categories);
            Draw(Path.Combine(request.OutDir, stem + ".jpg"), image, found, categories);
            log.Information("{File}: {Count} detections >= {Thr}", file, found.Count, request.ScoreThreshold);
        }
        if (failed > 0) throw new GflRuntimeException($"{failed} of {files.Count} images could not be read (see the errors above)");
        return files.Count;
    }

    private static void WriteJson(string path, string file, RgbImage image, List<(float[] Box, float Score, int Label)> dets, CategoryMap categories)
    {
        var arr = new JsonArray();
        foreach (var (b, s, l) in dets)
            arr.Add(new JsonObject
            {
                ["bbox_xyxy"] = new JsonArray(b[0], b[1], b[2], b[3]),
                ["bbox"] = new JsonArray(b[0], b[1], b[2] - b[0], b[3] - b[1]),
                ["score"] = s,
                ["category_id"] = categories.ToCategoryId(l),
                ["category"] = categories.Categories[l].Name,
            });
        var doc = new JsonObject { ["file"] = Path.GetFullPath(file), ["width"] = image.Width, ["height"] = image.Height, ["detections"] = arr };
        File.WriteAllText(path, doc.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
    }

    private static readonly SKColor[] Palette =
    [
        new(230, 25, 75), new(60, 180, 75), new(0, 130, 200), new(245, 130, 48), new(145, 30, 180), new(70, 240, 240),
        new(240, 50, 230), new(210, 245, 60), new(250, 190, 190), new(0, 128, 128), new(170, 110, 40), new(128, 0, 0),
    ];

    private static void Draw(string path, RgbImage image, List<(float[] Box, float Score, int Label)> dets, CategoryMap categories)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(image.Width, image.Height, SKColorType.Rgba8888, SKAlphaType.Opaque));
        var rgba = new byte[image.Width * image.Height * 4];
        for (int i = 0, j = 0; i < image.Pixels.Length; i += 3, j += 4)
        {
            rgba[j] = image.Pixels[i]; rgba[j + 1] = image.Pixels[i + 1]; rgba[j + 2] = image.Pixels[i + 2]; rgba[j + 3] = 255;
        }
        System.Runtime.InteropServices.Marshal.Copy(rgba, 0, bitmap.GetPixels(), rgba.Length);
        using var canvas = new SKCanvas(bitmap);
        float stroke = Math.Max(2f, Math.Min(image.Width, image.Height) / 300f);
        using var font = new SKFont(EmbeddedFont.Typeface, Math.Max(12f, Math.Min(image.Width, image.Height) / 40f));
        foreach (var (b, s, l) in dets.OrderBy(d => d.Score))
        {
            var colour = Palette[l % Palette.Length];
            using var box = new SKPaint { Color = colour, Style = SKPaintStyle.Stroke, StrokeWidth = stroke, IsAntialias = true };
            canvas.DrawRect(SKRect.Create(b[0], b[1], b[2] - b[0], b[3] - b[1]), box);
            var text = $"{categories.Categories[l].Name} {s:F2}";
            float w = font.MeasureText(text);
            float h = font.Size * 1.25f;
            float y = b[1] - h >= 0 ? b[1] - h : b[1];
            float x = Math.Max(0, Math.Min(b[0], image.Width - (w + 6)));   // keep the label inside the picture
            using var fill = new SKPaint { Color = colour, Style = SKPaintStyle.Fill };
            canvas.DrawRect(SKRect.Create(x, y, w + 6, h), fill);
            using var ink = new SKPaint { Color = SKColors.White, IsAntialias = true };
            canvas.DrawText(text, x + 3, y + font.Size, SKTextAlign.Left, font, ink);
        }
        using var img = SKImage.FromBitmap(bitmap);
        using var data = img.Encode(SKEncodedImageFormat.Jpeg, 92);
        using var fs = File.Create(path);
        data.SaveTo(fs);
    }
}
