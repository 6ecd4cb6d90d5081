using GflTrainer.Boxes;
using GflTrainer.Data;
using GflTrainer.Model;
using GflTrainer.Runtime;
using static TorchSharp.torch;

namespace GflTrainer.Inference;

/// <summary>Detections of one image, sorted by descending score.</summary>
/// <param name="Boxes">(n, 4) float32 xyxy in original-image pixels.</param>
/// <param name="Scores">(n,) float32 sigmoid class scores (GFL's joint class × quality score).</param>
/// <param name="Labels">(n,) int64 contiguous class labels 0..C−1.</param>
internal sealed record Detections(Tensor Boxes, Tensor Scores, Tensor Labels)
{
    /// <summary>Copies to host arrays: boxes as n·4 xyxy, scores, labels (empty arrays when n = 0: TorchSharp's data
    /// accessor throws on empty tensors).</summary>
    public (float[] Boxes, float[] Scores, long[] Labels) ToHost()
    {
        if (Scores.numel() == 0) return ([], [], []);
        return (Boxes.cpu().to(ScalarType.Float32).data<float>().ToArray(),
                Scores.cpu().to(ScalarType.Float32).data<float>().ToArray(),
                Labels.cpu().to(ScalarType.Int64).data<long>().ToArray());
    }
}

/// <summary>Candidates before the size filter and NMS, levels concatenated, each level sorted by score.</summary>
/// <param name="Boxes">(m, 4) rescaled to original-image pixels.</param>
/// <param name="Scores">(m,).</param>
/// <param name="Labels">(m,) int64.</param>
/// <param name="AboveThresholdPerLevel">(anchor, class) pairs above the score threshold, per level.</param>
/// <param name="KeptPerLevel">pairs kept after the per-level nms_pre cut.</param>
internal sealed record DetectionCandidates(Tensor Boxes, Tensor Scores, Tensor Labels,
    IReadOnlyList<long> AboveThresholdPerLevel, IReadOnlyList<long> KeptPerLevel);

/// <summary>
/// mmdetection 3.x <c>GFLHead._predict_by_feat_single</c> + <c>_bbox_post_process</c> (rescale=True): per level keep the
/// (anchor, class) pairs scoring above <c>scoreThreshold</c>, the best <c>nmsPre</c> of them, decode Integral·stride
/// around the anchor centre and clamp to the unpadded image; then rescale by float32(1/scale), drop boxes with width
/// or height ≤ <c>minBoxSize</c>, class-aware NMS, keep the best <c>maxPerImage</c>.
/// Defaults are gfl_r50_fpn_1x_coco's test_cfg.
/// With <c>deltaCoder</c> it is ATSS's and RetinaNet's path (mmdetection's <c>BaseDenseHead._predict_by_feat_single</c>):
/// the pairs are selected on sigmoid(cls), the anchors' deltas decoded by the coder and clipped to the image; ATSS
/// then multiplies each selected score by sigmoid(centerness) of its anchor (score factors) before the size filter and
/// NMS. (mmdetection multiplies; the square root of the product that the ATSS paper's code reports is not its test
/// path, and it ranks the detections the same.) RetinaNet has A anchors per location, selected as (anchor, class) pairs.
/// </summary>
internal sealed class GflPostprocessor(
    AnchorGenerator anchorGenerator,
    int regMax = 16,
    int nmsPre = 1000,
    double scoreThreshold = 0.05,
    double iouThreshold = 0.6,
    int maxPerImage = 100,
    double minBoxSize = 0,
    DeltaXywhBoxCoder? deltaCoder = null,
    bool centernessFactors = false)
{
    /// <summary>The post-processing of <c>model.test</c> for <c>model.head.type</c>; <paramref name="scoreThreshold"/>
    /// replaces its score_thr.</summary>
    public static GflPostprocessor FromConfig(Config.ModelConfig m, double? scoreThreshold = null) => new(
        AnchorGenerator.FromConfig(m.Head), m.Head.RegMax,
        m.Test.NmsPre, scoreThreshold ?? m.Test.ScoreThr, m.Test.NmsIou, m.Test.MaxPerImg, m.Test.MinBboxSize,
        deltaCoder: DetectorFactory.BoxCoder(m.Head.Type),
        centernessFactors: m.Head.Type == Config.HeadType.Atss);

    /// <summary>Detections of every image of a batch; flipped images are mapped back to the unflipped original.</summary>
    /// <param name="outputs">per level (N, C, h, w) and (N, 4(R+1), h, w) raw head outputs.</param>
    /// <param name="metas">per image, in batch order.</param>
    public IReadOnlyList<Detections> Predict(HeadOutputs outputs, IReadOnlyList<ImageMeta> metas)
    {
        using var noGrad = no_grad();
        var results = new List<Detections>(metas.Count);
        for (var i = 0; i < metas.Count; i++)
        {
            var meta = metas[i];
            var detections = PredictSingle(
                outputs.ClassScores.Select(t => t[i]).ToArray(),
                outputs.BoxPredictions.Select(t => t[i]).ToArray(),
                (meta.ImageHeight, meta.ImageWidth), ScaleOf(meta.ImageWidth, meta.OriginalWidth, meta.ScaleW),
                ScaleOf(meta.ImageHeight, meta.OriginalHeight, meta.ScaleH), outputs.Centerness?.Select(t => t[i]).ToArray());
            if (meta.Flipped)
            {
                // Horizontal flip of the original image: x1' = W − x2, x2' = W − x1.
                var b = detections.Boxes;
                var flipped = stack(new[]
                {
                    meta.OriginalWidth - b[TensorIndex.Colon, 2], b[TensorIndex.Colon, 1],
                    meta.OriginalWidth - b[TensorIndex.Colon, 0], b[TensorIndex.Colon, 3],
                }, -1);
                detections = detections with { Boxes = flipped };
            }
            results.Add(detections);
        }
        return results;
    }

    // mmdetection's scale_factor is new_size / old_size in double; ImageMeta stores it as float, so recompute it from
    // the integer sizes (same definition) to keep float32(1 / scale) bit-identical to the reference.
    private static double ScaleOf(int resized, int original, float stored) =>
        original > 0 ? (double)resized / original : stored;

    /// <summary>Detections of one image.</summary>
    /// <param name="classScores">per level (C, h, w) logits.</param>
    /// <param name="boxPredictions">per level (4(R+1), h, w) bin logits.</param>
    /// <param name="imageShape">(H, W) of the resized image before padding: boxes are clamped to it.</param>
    /// <param name="scaleW">resized / original width (mmdetection scale_factor[0]).</param>
    /// <param name="scaleH">resized / original height.</param>
    /// <param name="centerness">ATSS: per level (1, h, w) centerness logits.</param>
    public Detections PredictSingle(IReadOnlyList<Tensor> classScores, IReadOnlyList<Tensor> boxPredictions,
        (int H, int W) imageShape, double scaleW, double scaleH, IReadOnlyList<Tensor>? centerness = null)
    {
        using var noGrad = no_grad();
        return Suppress(Candidates(classScores, boxPredictions, imageShape, scaleW, scaleH, centerness));
    }

    /// <summary>The same post-processing from already decoded per-level outputs (what an exported ONNX model without
    /// <c>--nms</c> returns): <paramref name="levelProbabilities"/> (A_l, C) sigmoid scores and
    /// <paramref name="levelBoxes"/> (A_l, 4) boxes in input pixels. The boxes are clamped to
    /// <paramref name="imageShape"/> again: clamping to the padded input first changes nothing after that.</summary>
    public Detections PredictDecoded(IReadOnlyList<Tensor> levelProbabilities, IReadOnlyList<Tensor> levelBoxes,
        (int H, int W) imageShape, double scaleW, double scaleH)
    {
        using var noGrad = no_grad();
        return Suppress(Select(levelProbabilities, (l, anchors) => levelBoxes[l].index_select(0, anchors)
            .clamp_min(0).minimum(HostToDevice.Upload(tensor(new float[] { imageShape.W, imageShape.H, imageShape.W, imageShape.H }), levelBoxes[l].device)),
            scaleW, scaleH));
    }

    /// <summary>min_bbox_size, class-aware NMS, the max_per_img best.</summary>
    private Detections Suppress(DetectionCandidates candidates)
    {
        var boxes = candidates.Boxes;
        var scores = candidates.Scores;
        var labels = candidates.Labels;
        // The size filter is decided with NMS, on its one copy to the host (a nonzero here was one more device wait).
        var keep = Nms.Batched(boxes, scores, labels, iouThreshold, minBoxSize);
        keep = keep.narrow(0, 0, Math.Min(maxPerImage, keep.shape[0]));
        return new Detections(boxes.index_select(0, keep), scores.index_select(0, keep), labels.index_select(0, keep));
    }

    internal DetectionCandidates Candidates(IReadOnlyList<Tensor> classScores, IReadOnlyList<Tensor> boxPredictions,
        (int H, int W) imageShape, double scaleW, double scaleH, IReadOnlyList<Tensor>? centerness = null)
    {
        if (centernessFactors != (centerness is not null))
            throw new ArgumentException(centernessFactors ? "ATSS post-processing needs the centerness maps" : "this head's post-processing takes no centerness maps");
        if (centernessFactors && deltaCoder is null) throw new ArgumentException("ATSS post-processing needs a delta coder");
        // (A·C, h, w) -> (h·w·A, C): the A anchors of a cell together, as the anchors are laid out.
        var anchorsPerLocation = anchorGenerator.AnchorsPerLocation;
        var probabilities = classScores.Select(c => c.permute(1, 2, 0).reshape(-1, c.shape[0] / anchorsPerLocation).sigmoid()).ToList();
        // Only the selected anchors are decoded.
        return Select(probabilities, (l, anchors) =>
        {
            var featmapSize = ((int)classScores[l].shape[1], (int)classScores[l].shape[2]);
            var device = boxPredictions[l].device;
            var priors = anchorGenerator.LevelAnchors(l, featmapSize, device).index_select(0, anchors);
            if (deltaCoder is not null)
                return deltaCoder.Decode(priors, boxPredictions[l].permute(1, 2, 0).reshape(-1, 4).index_select(0, anchors), imageShape);
            var bins = boxPredictions[l].permute(1, 2, 0).reshape(-1, 4 * (regMax + 1)).index_select(0, anchors);
            var distances = Integral.Forward(bins, regMax) * anchorGenerator.Strides[l];
            return DistancePointBoxCoder.Decode(AnchorGenerator.Centers(priors), distances, imageShape);
        }, scaleW, scaleH,
        centerness is null ? null : (l, anchors) => centerness[l].reshape(-1).index_select(0, anchors).sigmoid());
    }

    /// <summary>Per level the (anchor, class) pairs above score_thr, the nms_pre best of them, and their boxes
    /// (<paramref name="boxesOf"/>: a level's boxes at the given anchors, in input pixels), scaled to the original image;
    /// <paramref name="factorOf"/> (ATSS's centerness) multiplies the selected scores.</summary>
    private DetectionCandidates Select(IReadOnlyList<Tensor> levelProbabilities, Func<int, Tensor, Tensor> boxesOf, double scaleW, double scaleH,
        Func<int, Tensor, Tensor>? factorOf = null)
    {
        var device = levelProbabilities[0].device;
        var boxes = new List<Tensor>();
        var scores = new List<Tensor>();
        var labels = new List<Tensor>();
        var above = new long[levelProbabilities.Count];
        var kept = new long[levelProbabilities.Count];
        for (var l = 0; l < levelProbabilities.Count; l++)
        {
            var levelScores = levelProbabilities[l];
            // filter_scores_and_topk: (anchor, class) pairs, not anchors; one anchor may give several classes.
            var mask = levelScores > scoreThreshold;
            var pairs = mask.nonzero();                                   // (m, 2) [anchor, class], row-major
            // masked_select's values in the same row-major order, gathered by the pairs (its own count would be another
            // device-to-host wait on a GPU).
            var pairScores = levelScores.index(pairs[TensorIndex.Colon, 0], pairs[TensorIndex.Colon, 1]);
            above[l] = pairs.shape[0];
            var (sorted, order) = pairScores.sort(descending: true);
            var k = Math.Min(nmsPre, above[l]);
            kept[l] = k;
            var top = order.narrow(0, 0, k);
            var anchorIndex = pairs[TensorIndex.Colon, 0].index_select(0, top);
            boxes.Add(boxesOf(l, anchorIndex));
            var selected = sorted.narrow(0, 0, k);
            scores.Add(factorOf is null ? selected : selected * factorOf(l, anchorIndex));
            labels.Add(pairs[TensorIndex.Colon, 1].index_select(0, top));
        }

        // mmdetection 3.x scale_boxes multiplies by the reciprocal, computed in double and stored as float32.
        var inverse = HostToDevice.Upload(tensor(new[] { (float)(1 / scaleW), (float)(1 / scaleH), (float)(1 / scaleW), (float)(1 / scaleH) }), device);
        return new DetectionCandidates(cat(boxes, 0) * inverse, cat(scores, 0), cat(labels, 0), above, kept);
    }
}
