using GflTrainer.Config;
using GflTrainer.Export.Onnx;
using GflTrainer.Model;

namespace GflTrainer.Export;

/// <summary>Writes the detector as an ONNX model file (opset 17, IR version 8) with its metadata.</summary>
internal static class GflOnnxExporter
{
    /// <summary>The model file's bytes.</summary>
    /// <param name="rawOutputs">also output each level's head outputs (checks, debugging).</param>
    /// <param name="nms">post-processing in the graph: <c>dets</c>/<c>labels</c> outputs.</param>
    /// <param name="fp16">float16 weights, float32 computation and I/O.</param>
    public static byte[] Encode(GflDetector model, ModelConfig config, IReadOnlyList<KeyValuePair<string, string>> metadata,
        bool rawOutputs = false, bool nms = false, bool fp16 = false)
    {
        bool wasTraining = model.training;
        model.eval();
        try
        {
            var graph = GflOnnxGraph.Build(model, config, rawOutputs, nms, fp16);
            var version = typeof(GflOnnxExporter).Assembly.GetName().Version?.ToString(3) ?? "unknown";
            return new OnnxProto.Model(graph, OnnxGraphBuilder.IrVersion, OnnxGraphBuilder.Opset, version,
                $"ResNet-FPN-{config.Head.Type.ToString().ToUpperInvariant()} detector exported by gfl", metadata).Encode();
        }
        finally
        {
            if (wasTraining) model.train();
        }
    }

    /// <summary>Writes <paramref name="path"/> atomically (temporary file, then rename).</summary>
    public static void Write(string path, byte[] encoded)
    {
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var tmp = full + ".tmp";
        File.WriteAllBytes(tmp, encoded);
        File.Move(tmp, full, overwrite: true);
    }
}
