using System.Security.Cryptography;
using System.Text.Json;
using GflTrainer.Checkpoints;
using GflTrainer.Config;
using GflTrainer.Inference;
using Serilog;
using static TorchSharp.torch;

namespace GflTrainer.Export;

/// <summary>What <c>gfl export</c> asks for.</summary>
/// <param name="Checkpoint">a gfl checkpoint folder (or a file in it), or bare weights with <paramref name="ConfigPath"/>.</param>
/// <param name="Out">the .onnx file to write; the sample goes next to it as <c>OUT.sample.safetensors</c>.</param>
/// <param name="Nms">post-processing in the graph: mmdeploy's <c>dets</c>/<c>labels</c> outputs instead of <c>scores</c>/<c>bboxes</c>.</param>
/// <param name="Fp16">float16 weights (half the file), float32 computation and I/O.</param>
public sealed record ExportRequest(string Checkpoint, string? ConfigPath, IReadOnlyList<string> Overrides, string Out, string Format = "onnx",
    bool Nms = false, bool Fp16 = false);

/// <summary>What was written.</summary>
public sealed record ExportResult(string Model, string Sample, long Bytes);

/// <summary><c>gfl export</c>: the trained detector as an ONNX model (see <see cref="GflOnnxGraph"/> for the graph) with
/// its metadata, and a sample (one input batch and gfl's own outputs for it) that any ONNX runtime can be checked with.</summary>
public static class ExportRun
{
    public static ExportResult Execute(ExportRequest request, ILogger log)
    {
        if (!string.Equals(request.Format, "onnx", StringComparison.OrdinalIgnoreCase))
            throw new GflConfigException($"--format {request.Format}: only onnx is supported") { Key = "--format" };
        using var detector = TrainedDetector.Load(request.Checkpoint, request.ConfigPath, request.Overrides, CPU);
        var cfg = detector.Config;
        var weightsFile = Directory.Exists(request.Checkpoint) ? Path.Combine(request.Checkpoint, CheckpointStore.ModelFile)
            : Path.GetFileName(request.Checkpoint) == CheckpointStore.MetaFile
                ? Path.Combine(Path.GetDirectoryName(request.Checkpoint)!, CheckpointStore.ModelFile) : request.Checkpoint;
        string digest;
        using (var stream = File.OpenRead(weightsFile)) digest = Convert.ToHexString(SHA256.HashData(stream)).ToLowerInvariant();
        var (h, w) = SampleSize(cfg.Data.ImgScale, cfg.Data.PadDivisor);
        var metadata = Metadata(cfg, detector.Categories, detector.Model.Strides, Path.GetFullPath(request.Checkpoint), digest, request.Fp16);
        var encoded = GflOnnxExporter.Encode(detector.Model, cfg.Model, metadata, nms: request.Nms, fp16: request.Fp16);
        GflOnnxExporter.Write(request.Out, encoded);

        // The sample: a seeded normalised-looking input and gfl's outputs for it, named as the graph's input and outputs.
        var sample = request.Out + ".sample.safetensors";
        using (var scope = NewDisposeScope())
        using (no_grad())
        {
            var generator = new TorchSharp.torch.Generator(0);
            var images = randn(new long[] { 1, 3, h, w }, generator: generator);
            var outputs = detector.Model.forward(images);
            var tensors = new Dictionary<string, Tensor> { [GflOnnxGraph.Input] = images };
            var (scores, boxes) = GflOnnxReference.Decode(detector.Model, outputs, cfg.Model, (h, w));
            if (request.Nms)
            {
                // One image: its detections fill every row (no padding rows). The post-processing of the decoded outputs,
                // as the graph's: with the image the whole input, the same detections as the checkpoint's for GFL; ATSS
                // selects on sigmoid(cls)·sigmoid(centerness) as mmdeploy does. (The sample holds the float32 model's
                // outputs also for --fp16: what the half weights are meant to reproduce.)
                var d = GflPostprocessor.FromConfig(cfg.Model).PredictDecoded(Levels(scores), Levels(boxes), (h, w), 1.0, 1.0);
                tensors[GflOnnxGraph.Dets] = cat([d.Boxes.to_type(ScalarType.Float32), d.Scores.to_type(ScalarType.Float32).unsqueeze(1)], 1).unsqueeze(0);
                tensors[GflOnnxGraph.Labels] = d.Labels.to_type(ScalarType.Int64).unsqueeze(0);
            }
            else
            {
                tensors[GflOnnxGraph.Scores] = scores;
                tensors[GflOnnxGraph.Boxes] = boxes;
            }
            // Image 0's rows split by level (the post-processing's nms_pre is per level).
            Tensor[] Levels(Tensor all) => all[0].split(outputs.ClassScores.Select(c => c.shape[2] * c.shape[3]).ToArray(), 0);
            Safetensors.Write(sample, tensors, new Dictionary<string, string> { ["model"] = Path.GetFileName(request.Out) });
        }
        log.Information("wrote {Model} ({MB:F1} MB, opset {Opset}) and {Sample} (input {H}x{W} and gfl's outputs)",
            request.Out, encoded.Length / 1048576.0, Onnx.OnnxGraphBuilder.Opset, sample, h, w);
        return new ExportResult(Path.GetFullPath(request.Out), Path.GetFullPath(sample), encoded.LongLength);
    }

    /// <summary>The sample's input (H, W): a 4:3 landscape image resized as the pipeline resizes (keep ratio: the short
    /// side to the scale's short side unless the long side would pass the long one), padded to the divisor. A
    /// keep-ratio scale such as (100000, 320), "short side 320", gives 320x427 -> 320x448, not a 100000 px wide input.</summary>
    internal static (int H, int W) SampleSize(IReadOnlyList<int> imgScale, int divisor)
    {
        double longest = Math.Max(imgScale[0], imgScale[1]), shortest = Math.Min(imgScale[0], imgScale[1]);
        double factor = Math.Min(shortest / 3, longest / 4);   // a 4 x 3 image scaled to fit
        int w = (int)(4 * factor + 0.5), h = (int)(3 * factor + 0.5);
        return ((h + divisor - 1) / divisor * divisor, (w + divisor - 1) / divisor * divisor);
    }

    /// <summary>The model's metadata props: everything <see cref="Inference.OnnxDetector"/> (or a user's service) needs to
    /// pre- and post-process as gfl does, and where the weights came from.</summary>
    internal static List<KeyValuePair<string, string>> Metadata(GflConfig cfg, Data.CategoryMap categories, IReadOnlyList<int> strides,
        string source, string sha256, bool fp16) =>
    [
        new("gfl_version", typeof(ExportRun).Assembly.GetName().Version?.ToString(3) ?? "unknown"),
        new("source_checkpoint", source),
        new("source_sha256", sha256),
        new("classes", JsonSerializer.Serialize(categories.Categories.Select(c => c.Name))),
        new("category_ids", JsonSerializer.Serialize(categories.Categories.Select(c => c.Id))),
        new("img_scale", JsonSerializer.Serialize(cfg.Data.ImgScale)),
        new("keep_ratio", cfg.Data.KeepRatio ? "true" : "false"),
        new("size_divisor", cfg.Data.PadDivisor.ToString(System.Globalization.CultureInfo.InvariantCulture)),
        new("strides", JsonSerializer.Serialize(strides)),
        new("head", cfg.Model.Head.Type.ToString().ToLowerInvariant()),
        new("reg_max", cfg.Model.Head.RegMax.ToString(System.Globalization.CultureInfo.InvariantCulture)),
        new("octave_base_scale", cfg.Model.Head.OctaveBaseScale.ToString("R", System.Globalization.CultureInfo.InvariantCulture)),
        new("scales_per_octave", cfg.Model.Head.ScalesPerOctave.ToString(System.Globalization.CultureInfo.InvariantCulture)),
        new("ratios", JsonSerializer.Serialize(cfg.Model.Head.Ratios)),
        new("anchors_per_location", Model.AnchorGenerator.FromConfig(cfg.Model.Head).AnchorsPerLocation.ToString(System.Globalization.CultureInfo.InvariantCulture)),
        new("mean", JsonSerializer.Serialize(cfg.Data.Mean)),
        new("std", JsonSerializer.Serialize(cfg.Data.Std)),
        new("to_rgb", cfg.Data.ToRgb ? "true" : "false"),
        new("score_threshold", cfg.Model.Test.ScoreThr.ToString("R", System.Globalization.CultureInfo.InvariantCulture)),
        new("nms_iou", cfg.Model.Test.NmsIou.ToString("R", System.Globalization.CultureInfo.InvariantCulture)),
        new("max_per_img", cfg.Model.Test.MaxPerImg.ToString(System.Globalization.CultureInfo.InvariantCulture)),
        new("nms_pre", cfg.Model.Test.NmsPre.ToString(System.Globalization.CultureInfo.InvariantCulture)),
        new("min_bbox_size", cfg.Model.Test.MinBboxSize.ToString("R", System.Globalization.CultureInfo.InvariantCulture)),
        new("weights", fp16 ? "float16" : "float32"),
    ];
}
