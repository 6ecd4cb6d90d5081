using GflTrainer.Boxes;
using GflTrainer.Config;
using GflTrainer.Model;
using static TorchSharp.torch;

namespace GflTrainer.Export;

/// <summary>What the exported graph computes, with gfl's own code: the head outputs decoded at every anchor as
/// <see cref="Inference.GflPostprocessor"/> decodes its candidates, clamped to the input. GFL: sigmoid scores, Integral
/// x stride from the anchor centres. ATSS: sigmoid(cls)·sigmoid(centerness) and the anchors' DeltaXYWH boxes; RetinaNet:
/// sigmoid(cls) of each of the A anchors and their DeltaXYWH boxes. The
/// export's sample file and the tests compare ONNX Runtime against this.</summary>
internal static class GflOnnxReference
{
    /// <returns>scores (N, A, C) and boxes (N, A, 4) for an input of <paramref name="inputSize"/> (H, W).</returns>
    public static (Tensor Scores, Tensor Boxes) Decode(GflDetector model, HeadOutputs outputs, ModelConfig config, (int H, int W) inputSize)
    {
        using var scope = NewDisposeScope();
        var h = config.Head;
        var anchors = AnchorGenerator.FromConfig(h);
        var coder = DetectorFactory.BoxCoder(h.Type);
        var scores = new List<Tensor>();
        var boxes = new List<Tensor>();
        long batch = outputs.ClassScores[0].shape[0];
        for (int l = 0; l < outputs.ClassScores.Count; l++)
        {
            var c = outputs.ClassScores[l];
            var probabilities = c.permute(0, 2, 3, 1).reshape(batch, -1, h.NumClasses).sigmoid();
            if (h.Type == HeadType.Atss) probabilities = probabilities * outputs.Centerness![l].reshape(batch, -1, 1).sigmoid();
            scores.Add(probabilities);
            var levelAnchors = anchors.LevelAnchors(l, ((int)c.shape[2], (int)c.shape[3]), c.device);
            var reg = outputs.BoxPredictions[l].permute(0, 2, 3, 1);
            boxes.Add(stack(Enumerable.Range(0, (int)batch).Select(i => coder is not null
                ? coder.Decode(levelAnchors, reg[i].reshape(-1, 4), inputSize)
                : DistancePointBoxCoder.Decode(AnchorGenerator.Centers(levelAnchors),
                    Integral.Forward(reg[i].reshape(-1, reg.shape[3]), h.RegMax) * model.Strides[l], inputSize)).ToList()));
        }
        return (cat(scores, 1).MoveToOuterDisposeScope(), cat(boxes, 1).MoveToOuterDisposeScope());
    }
}
