using System.Text.Json;
using GflTrainer.Data;
using GflTrainer.Runtime;
using GflTrainer.Model;
using TorchSharp;
using GflTrainer.Coco;
using static TorchSharp.torch;

namespace GflTrainer.Inference;

/// <summary>Runs the detector over an evaluation loader and returns COCO-format detections (original image ids,
/// original category ids, [x, y, w, h] in original pixels). One dispose scope per batch; only .NET values leave it.</summary>
internal static class DetectionInference
{
    public static List<CocoDetection> Run(GflDetector model, DetectionLoader loader, GflPostprocessor postprocessor,
        CategoryMap categories, Action<int, int>? progress = null, CancellationToken cancel = default)
    {
        bool wasTraining = model.training;
        model.eval();
        try
        {
            return Run(b => postprocessor.Predict(model.forward(b.Images), b.Metas), loader, categories, progress, cancel);
        }
        finally
        {
            if (wasTraining) model.train();
        }
    }

    /// <param name="detect">the detections of each image of a batch, in original pixels: gfl's model and
    /// post-processing, or an exported model in ONNX Runtime (<see cref="OnnxDetector.Predict"/>).</param>
    public static List<CocoDetection> Run(Func<DetectionBatch, IReadOnlyList<Detections>> detect, DetectionLoader loader,
        CategoryMap categories, Action<int, int>? progress = null, CancellationToken cancel = default)
    {
        var results = new List<CocoDetection>();
        using var noGrad = no_grad();
        int done = 0, total = loader.BatchesPerEpoch;
        foreach (var batch in loader.Epoch(0))
        {
            cancel.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            using var b = batch;
            var dets = detect(b);
            for (int i = 0; i < dets.Count; i++)
            {
                var meta = b.Metas[i];
                var (boxes, scores, labels) = dets[i].ToHost();
                for (int k = 0; k < scores.Length; k++)
                {
                    double x1 = boxes[4 * k], y1 = boxes[4 * k + 1], x2 = boxes[4 * k + 2], y2 = boxes[4 * k + 3];
                    results.Add(new CocoDetection(meta.ImageId, categories.ToCategoryId((int)labels[k]),
                        x1, y1, x2 - x1, y2 - y1, scores[k]));
                }
            }
            progress?.Invoke(++done, total);
            StepBoundaryGc.AfterStep(done);
        }
        return results;
    }

    /// <summary>Writes detections as a COCO results file (the format pycocotools' loadRes reads), atomically.</summary>
    public static void WriteResults(string path, IReadOnlyList<CocoDetection> detections)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(dir);
        var tmp = path + ".tmp";
        using (var fs = File.Create(tmp))
        using (var w = new Utf8JsonWriter(fs))
        {
            w.WriteStartArray();
            foreach (var d in detections)
            {
                w.WriteStartObject();
                w.WriteNumber("image_id", d.ImageId);
                w.WriteNumber("category_id", d.CategoryId);
                w.WriteStartArray("bbox");
                // Full precision, so evaluating this file (here or with pycocotools) gives the numbers we print.
                w.WriteNumberValue(d.X); w.WriteNumberValue(d.Y); w.WriteNumberValue(d.Width); w.WriteNumberValue(d.Height);
                w.WriteEndArray();
                w.WriteNumber("score", d.Score);
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        File.Move(tmp, path, overwrite: true);
    }
}
