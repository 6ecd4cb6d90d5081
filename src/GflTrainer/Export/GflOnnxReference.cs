using GflTrainer.Boxes;
using GflTrainer.Model;
using static TorchSharp.torch;

namespace GflTrainer.Export;

/// <summary>What the exported graph computes, with gfl's own code: the head outputs decoded at every anchor point as
/// <see cref="Inference.GflPostprocessor"/> decodes its candidates (sigmoid scores; Integral x stride from the anchor
/// centres; clamped to the input). The export's sample file and the tests compare ONNX Runtime against this.</summary>
internal static class GflOnnxReference
{
    /// <returns>scores (N, A, C) and boxes (N, A, 4) for an input of <paramref name="inputSize"/> (H, W).</returns>
    public static (Tensor Scores, Tensor Boxes) Decode(GflDetector model, HeadOutputs outputs, int regMax, (int H, int W) inputSize)
    {
        using var scope = NewDisposeScope();
        var anchors = new AnchorGenerator(model.Strides);
        var scores = new List<Tensor>();
        var boxes = new List<Tensor>();
        long batch = outputs.ClassScores[0].shape[0];
        for (int l = 0; l < outputs.ClassScores.Count; l++)
        {
            var c = outputs.ClassScores[l];
            scores.Add(c.permute(0, 2, 3, 1).reshape(batch, -1, c.shape[1]).sigmoid());
            var centers = AnchorGenerator.Centers(anchors.LevelAnchors(l, ((int)c.shape[2], (int)c.shape[3]), c.device));
            var reg = outputs.BoxPredictions[l].permute(0, 2, 3, 1);
            boxes.Add(stack(Enumerable.Range(0, (int)batch).Select(i => DistancePointBoxCoder.Decode(centers,
                Integral.Forward(reg[i].reshape(-1, reg.shape[3]), regMax) * model.Strides[l], inputSize)).ToList()));
        }
        return (cat(scores, 1).MoveToOuterDisposeScope(), cat(boxes, 1).MoveToOuterDisposeScope());
    }
}
