using System.Text.Json.Nodes;
using GflTrainer.Checkpoints;
using GflTrainer.Data;
using GflTrainer.Data.Transforms;
using GflTrainer.Model;
using GflTrainer.Reporting;
using Serilog;
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

    private static void Draw(string path, RgbImage image, List<(float[] Box, float Score, int Label)> dets, CategoryMap categories) =>
        DetectionDrawing.SaveJpeg(path, image, dets.OrderBy(d => d.Score).Select(d =>
            new DrawnBox(d.Box[0], d.Box[1], d.Box[2], d.Box[3], $"{categories.Categories[d.Label].Name} {d.Score:F2}", d.Label)));
}
