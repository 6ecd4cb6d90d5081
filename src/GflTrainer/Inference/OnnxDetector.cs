using System.Globalization;
using System.Text.Json;
using GflTrainer.Config;
using GflTrainer.Data;
using GflTrainer.Model;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using static TorchSharp.torch;

namespace GflTrainer.Inference;

/// <summary>A model written by <c>gfl export</c>, run in ONNX Runtime (CPU) with gfl's own pre- and post-processing:
/// what <c>gfl predict --onnx</c> uses to check a deployment artefact without the trainer. Everything it needs (input
/// size, normalisation, classes, post-processing settings) comes from the model's metadata. A model without
/// <c>--nms</c> goes through <see cref="GflPostprocessor.PredictDecoded"/> (the same detections as the checkpoint);
/// one with <c>--nms</c> already ends in detections, which are only rescaled.</summary>
internal sealed class OnnxDetector : IDisposable
{
    readonly InferenceSession _session;
    readonly GflPostprocessor _post;
    readonly IReadOnlyList<int> _strides;
    readonly bool _hasNms;
    readonly int _anchorsPerLocation;

    public string Path { get; }
    public DataConfig Data { get; }
    public CategoryMap Categories { get; }

    OnnxDetector(string path, InferenceSession session, DataConfig data, CategoryMap categories, GflPostprocessor post,
        IReadOnlyList<int> strides, bool hasNms, int anchorsPerLocation)
    {
        Path = path; _session = session; Data = data; Categories = categories; _post = post; _strides = strides; _hasNms = hasNms;
        _anchorsPerLocation = anchorsPerLocation;
    }

    /// <param name="scoreThreshold">the lowest score wanted (a model without --nms keeps pairs above the smaller of
    /// this and its own threshold, as gfl predict does); null: the model's own (evaluation).</param>
    /// <param name="threads">ONNX Runtime's intra-op threads; 0: its default (one per physical core).</param>
    public static OnnxDetector Load(string path, double? scoreThreshold = null, int threads = 0)
    {
        if (!File.Exists(path)) throw new GflConfigException($"--onnx {path}: no such file") { Key = "--onnx" };
        InferenceSession session;
        using (var options = new SessionOptions { IntraOpNumThreads = threads })
        {
            try { session = new InferenceSession(path, options); }
            catch (OnnxRuntimeException e) { throw new GflConfigException($"--onnx {path}: ONNX Runtime cannot load it: {e.Message}", e) { Key = "--onnx" }; }
        }
        try
        {
            var meta = session.ModelMetadata.CustomMetadataMap;
            string Get(string key) => meta.TryGetValue(key, out var v) ? v
                : throw new GflConfigException($"--onnx {path}: metadata '{key}' missing: not a model written by gfl export") { Key = "--onnx" };
            T Json<T>(string key) => JsonSerializer.Deserialize<T>(Get(key)) ?? throw new GflConfigException($"--onnx {path}: metadata '{key}' is empty");
            double Number(string key) => double.Parse(Get(key), CultureInfo.InvariantCulture);
            var data = new DataConfig
            {
                ImgScale = Json<int[]>("img_scale"), Mean = Json<double[]>("mean"), Std = Json<double[]>("std"),
                ToRgb = Get("to_rgb") == "true", PadDivisor = (int)Number("size_divisor"),
            };
            var names = Json<string[]>("classes");
            var ids = Json<long[]>("category_ids");
            var categories = new CategoryMap(ids.Zip(names, (id, name) => new CategoryEntry(id, name)).ToList());
            var strides = Json<int[]>("strides");
            var post = new GflPostprocessor(new AnchorGenerator(strides), (int)Number("reg_max"), (int)Number("nms_pre"),
                Math.Min(Number("score_threshold"), scoreThreshold ?? double.PositiveInfinity), Number("nms_iou"), (int)Number("max_per_img"), Number("min_bbox_size"));
            bool hasNms = session.OutputMetadata.ContainsKey(Export.GflOnnxGraph.Dets);
            // Models exported before the key existed are GFL's: one anchor per location.
            int anchorsPerLocation = meta.ContainsKey("anchors_per_location") ? (int)Number("anchors_per_location") : 1;
            return new OnnxDetector(path, session, data, categories, post, strides, hasNms, anchorsPerLocation);
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    /// <summary>Detections of each image of a collated batch, in original image pixels.</summary>
    public IReadOnlyList<Detections> Predict(DetectionBatch batch) => Predict(batch.Images, batch.Metas);

    /// <summary>Detections of each image of normalised, padded <paramref name="images"/> (N, 3, H, W).</summary>
    public IReadOnlyList<Detections> Predict(TorchSharp.torch.Tensor imagesIn, IReadOnlyList<ImageMeta> metas)
    {
        var images = imagesIn.cpu().contiguous();
        var shape = images.shape.Select(d => (int)d).ToArray();
        var input = new DenseTensor<float>(images.data<float>().ToArray(), shape);
        using var results = _session.Run([NamedOnnxValue.CreateFromTensor(Export.GflOnnxGraph.Input, input)]);
        var byName = results.ToDictionary(r => r.Name);
        var found = new List<Detections>(metas.Count);
        for (int i = 0; i < metas.Count; i++)
        {
            var meta = metas[i];
            double sw = (double)meta.ImageWidth / meta.OriginalWidth, sh = (double)meta.ImageHeight / meta.OriginalHeight;
            found.Add(_hasNms ? FromDets(byName, i, meta, sw, sh) : FromDecoded(byName, i, meta, shape[2], shape[3], sw, sh));
        }
        return found;
    }

    Detections FromDecoded(IReadOnlyDictionary<string, DisposableNamedOnnxValue> outputs, int image, ImageMeta meta, int height, int width,
        double scaleW, double scaleH)
    {
        var scores = outputs[Export.GflOnnxGraph.Scores].AsTensor<float>();
        var boxes = outputs[Export.GflOnnxGraph.Boxes].AsTensor<float>();
        int anchors = scores.Dimensions[1], classes = scores.Dimensions[2];
        // Level sizes of a (height, width) input: ceil(size / stride), as the stride-2 convolutions halve (rounding up),
        // times the anchors of each location.
        var sizes = _strides.Select(s => ((height + s - 1) / s) * ((width + s - 1) / s) * _anchorsPerLocation).ToList();
        if (sizes.Sum() != anchors)
            throw new GflRuntimeException($"{Path}: {anchors} anchor points for a {height}x{width} input, expected {sizes.Sum()} (strides {string.Join(",", _strides)})");
        var allScores = tensor(scores.ToArray(), [scores.Dimensions[0], anchors, classes])[image];
        var allBoxes = tensor(boxes.ToArray(), [boxes.Dimensions[0], anchors, 4])[image];
        var levelScores = new List<TorchSharp.torch.Tensor>();
        var levelBoxes = new List<TorchSharp.torch.Tensor>();
        long offset = 0;
        foreach (var n in sizes)
        {
            levelScores.Add(allScores.narrow(0, offset, n));
            levelBoxes.Add(allBoxes.narrow(0, offset, n));
            offset += n;
        }
        return _post.PredictDecoded(levelScores, levelBoxes, (meta.ImageHeight, meta.ImageWidth), scaleW, scaleH);
    }

    static Detections FromDets(IReadOnlyDictionary<string, DisposableNamedOnnxValue> outputs, int image, ImageMeta meta, double scaleW, double scaleH)
    {
        var dets = outputs[Export.GflOnnxGraph.Dets].AsTensor<float>();
        var labels = outputs[Export.GflOnnxGraph.Labels].AsTensor<long>();
        var rows = Enumerable.Range(0, dets.Dimensions[1]).Where(j => labels[image, j] >= 0).ToList();
        // The graph clamped to the padded input: clamp to the image, then to original pixels (x float32(1 / scale), as gfl).
        var boxes = tensor(rows.SelectMany(j => new[] { dets[image, j, 0], dets[image, j, 1], dets[image, j, 2], dets[image, j, 3] }).ToArray(), [rows.Count, 4])
            .clamp_min(0).minimum(tensor(new float[] { meta.ImageWidth, meta.ImageHeight, meta.ImageWidth, meta.ImageHeight }))
            * tensor(new[] { (float)(1 / scaleW), (float)(1 / scaleH), (float)(1 / scaleW), (float)(1 / scaleH) });
        return new Detections(boxes, tensor(rows.Select(j => dets[image, j, 4]).ToArray()), tensor(rows.Select(j => labels[image, j]).ToArray()));
    }

    public void Dispose() => _session.Dispose();
}
