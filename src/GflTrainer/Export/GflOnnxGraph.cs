using GflTrainer.Config;
using GflTrainer.Export.Onnx;
using GflTrainer.Model;
using static TorchSharp.torch;
using A = GflTrainer.Export.Onnx.OnnxGraphBuilder;

namespace GflTrainer.Export;

/// <summary>The detector as an ONNX graph, built from its state dict (mmdetection's names) and model config: the
/// same operations as <see cref="GflDetector.forward"/> in eval mode. BatchNorms are folded into their convs with the
/// formula of <see cref="ConvBatchNorm"/>; GroupNorm is Reshape -> InstanceNormalization -> Reshape -> Mul -> Add
/// (TensorRT imports no GroupNormalization, mmdeploy exports it the same way); the FPN's nearest upsampling is a
/// Resize to the finer level's runtime shape (asymmetric, floor: PyTorch's 'nearest'), so any input size works.
/// Outputs: <c>scores</c> (N, A, C) class probabilities (sigmoid) and <c>bboxes</c> (N, A, 4) x1 y1 x2 y2 in input
/// pixels, clamped to the input, for all A anchors of P3..P7 (level by level, row-major, a location's anchors
/// together, as <see cref="Inference.GflPostprocessor"/> orders them). GFL: the Integral (softmax over the R+1 bins
/// times 0..R) times the stride from the points (x·s, y·s) of each level's runtime size. ATSS and RetinaNet: the
/// anchors' DeltaXYWH boxes; ATSS's scores are multiplied by sigmoid(centerness), as mmdeploy does. With
/// <c>rawOutputs</c> also each level's head outputs, <c>cls_score_pL</c>, <c>bbox_pred_pL</c> and, for ATSS,
/// <c>centerness_pL</c>.</summary>
internal static class GflOnnxGraph
{
    public const string Input = "images";
    public const string Scores = "scores";
    public const string Boxes = "bboxes";
    const double BatchNormEps = 1e-5, GroupNormEps = 1e-5;

    /// <param name="nms">end with the post-processing (<see cref="Nms"/>) and output <c>dets</c>/<c>labels</c> instead of
    /// <c>scores</c>/<c>bboxes</c>.</param>
    /// <param name="fp16">weights stored as float16 (see <see cref="OnnxGraphBuilder.HalfWeights"/>).</param>
    public static OnnxProto.Graph Build(GflDetector model, ModelConfig config, bool rawOutputs = false, bool nms = false, bool fp16 = false)
    {
        using var scope = NewDisposeScope();
        var sd = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().cpu().to_type(ScalarType.Float32));
        var g = new OnnxGraphBuilder { HalfWeights = fp16 };
        Tensor W(string key) => sd.TryGetValue(key, out var t) ? t : throw new InvalidOperationException($"state dict has no {key}");

        // Conv (bias-free) followed by an eval-mode BatchNorm, folded: w * g/sqrt(v+eps), b - m * g/sqrt(v+eps).
        string ConvBn(string x, string conv, string bn, long stride, string hint)
        {
            var w = W(conv + ".weight");
            var scale = W(bn + ".weight") * (W(bn + ".running_var") + BatchNormEps).rsqrt();
            var weight = w * scale.view(-1, 1, 1, 1);
            var bias = W(bn + ".bias") - W(bn + ".running_mean") * scale;
            long k = w.shape[2];
            return g.Conv(x, g.Initializer(conv + ".weight", weight), g.Initializer(conv + ".bias", bias), k, stride, k / 2, hint);
        }
        string Conv(string x, string conv, long stride, string hint)
        {
            var w = W(conv + ".weight");
            long k = w.shape[2];
            string? bias = sd.ContainsKey(conv + ".bias") ? g.Initializer(conv + ".bias", W(conv + ".bias")) : null;
            return g.Conv(x, g.Initializer(conv + ".weight", w), bias, k, stride, k / 2, hint);
        }

        // Backbone: stem, max pool, four stages of residual blocks; C3..C5 out.
        var b = config.Backbone;
        var y = g.Relu(ConvBn(Input, "backbone.conv1", "backbone.bn1", 2, "stem"), "stem_relu");
        y = g.Op("MaxPool", "stem_pool", [y], A.Attr("kernel_shape", 3L, 3L), A.Attr("strides", 2L, 2L), A.Attr("pads", 1L, 1L, 1L, 1L));
        var stages = new List<string>();
        for (int stage = 1; stage <= 4; stage++)
        {
            for (int block = 0; sd.ContainsKey($"backbone.layer{stage}.{block}.conv1.weight"); block++)
            {
                var p = $"backbone.layer{stage}.{block}";
                long stride = stage > 1 && block == 0 ? 2 : 1;
                bool bottleneck = sd.ContainsKey(p + ".conv3.weight");
                // 'pytorch' style: the stride sits on the 3x3 conv (conv2) of a bottleneck, on conv1 of a basic block.
                var z = g.Relu(ConvBn(y, p + ".conv1", p + ".bn1", bottleneck ? 1 : stride, p + ".conv1"), p + ".relu1");
                z = ConvBn(z, p + ".conv2", p + ".bn2", bottleneck ? stride : 1, p + ".conv2");
                if (bottleneck) z = ConvBn(g.Relu(z, p + ".relu2"), p + ".conv3", p + ".bn3", 1, p + ".conv3");
                var identity = sd.ContainsKey(p + ".downsample.0.weight")
                    ? ConvBn(y, p + ".downsample.0", p + ".downsample.1", stride, p + ".downsample") : y;
                y = g.Relu(g.Add(z, identity, p + ".add"), p + ".out");
            }
            stages.Add(y);
        }
        var features = stages.Skip(1).ToList();   // C3, C4, C5

        // FPN: laterals, top-down nearest upsampling to the finer level's size, 3x3 outputs, stride-2 extra levels on
        // the last output ('on_output').
        var laterals = features.Select((f, i) => Conv(f, $"neck.lateral_convs.{i}.conv", 1, $"lateral{i}")).ToArray();
        for (int i = laterals.Length - 1; i > 0; i--)
        {
            var size = g.Op("Shape", $"lateral{i - 1}_shape", [laterals[i - 1]]);   // same N and channels: the full 4-D size
            var up = g.Op("Resize", $"lateral{i}_up", [laterals[i], "", "", size], A.Attr("mode", "nearest"),
                A.Attr("coordinate_transformation_mode", "asymmetric"), A.Attr("nearest_mode", "floor"));
            laterals[i - 1] = g.Add(laterals[i - 1], up, $"lateral{i - 1}_merged");
        }
        // The first extra level reads C5 with 'on_input' (RetinaNet), the last output otherwise.
        var h = config.Head;
        bool extraOnInput = config.Neck.AddExtraConvs == ExtraConvsSource.OnInput;
        var levels = new List<string>();
        for (int i = 0; sd.ContainsKey($"neck.fpn_convs.{i}.conv.weight"); i++)
            levels.Add(Conv(i < laterals.Length ? laterals[i] : i == laterals.Length && extraOnInput ? features[^1] : levels[i - 1],
                $"neck.fpn_convs.{i}.conv", i < laterals.Length ? 1 : 2, $"p{i + 3}"));

        // Head: per level two towers (conv-GN-ReLU; conv-ReLU for RetinaNet), the classifier and the box regressor
        // (times the level's Scale for GFL and ATSS).
        string GroupNorm(string x, string key, int groups, string hint)
        {
            var shape = g.Op("Shape", hint + "_shape", [x]);
            var grouped = g.Op("Reshape", hint + "_grouped", [x, g.Ints(0, groups, -1)]);
            var unitScale = g.Initializer($"gn_ones_{groups}", ones(groups));
            var noShift = g.Initializer($"gn_zeros_{groups}", zeros(groups));
            var normed = g.Op("InstanceNormalization", hint + "_normed", [grouped, unitScale, noShift], A.Attr("epsilon", (float)GroupNormEps));
            var back = g.Op("Reshape", hint + "_ungrouped", [normed, shape]);
            var gamma = g.Initializer(key + ".weight", W(key + ".weight").view(-1, 1, 1));
            var beta = g.Initializer(key + ".bias", W(key + ".bias").view(-1, 1, 1));
            return g.Add(g.Mul(back, gamma, hint + "_scaled"), beta, hint + "_gn");
        }
        string Tower(string x, string tower, int level)
        {
            for (int i = 0; sd.ContainsKey($"bbox_head.{tower}.{i}.conv.weight"); i++)
            {
                var p = $"bbox_head.{tower}.{i}";
                var conv = Conv(x, p + ".conv", 1, $"{p}.conv_p{level + 3}");
                x = g.Relu(sd.ContainsKey(p + ".gn.weight") ? GroupNorm(conv, p + ".gn", h.NormGroups, $"{p}_p{level + 3}") : conv, $"{p}_p{level + 3}_relu");
            }
            return x;
        }
        var raw = new List<OnnxProto.ValueInfo>();
        var levelScores = new List<string>();
        var levelBoxes = new List<string>();
        // Boxes are clamped to the input: x in [0, W], y in [0, H] (mmdetection clamps to the image shape; the input is
        // that image, padded to a multiple of 32).
        var inputShape = g.Op("Cast", "input_shape_f", [g.Op("Shape", "input_shape", [Input])], A.Attr("to", (long)OnnxProto.DataType.Float));
        var hwInput = g.Op("Gather", "input_hw", [inputShape, g.Ints(2, 3)], A.Attr("axis", 0L));
        var whInput = g.Op("Gather", "input_wh", [hwInput, g.Ints(1, 0)], A.Attr("axis", 0L));
        var limit = g.Op("Concat", "box_limit", [whInput, whInput], A.Attr("axis", 0L));
        var strides = model.Strides;
        bool atss = h.Type == HeadType.Atss, retina = h.Type == HeadType.Retinanet;
        var anchorGenerator = AnchorGenerator.FromConfig(h);
        var coder = DetectorFactory.BoxCoder(h.Type);
        int anchorsPerLocation = anchorGenerator.AnchorsPerLocation;
        var project = atss || retina ? null : g.Initializer("integral_project", linspace(0, h.RegMax, h.RegMax + 1, dtype: ScalarType.Float32));
        var (clsKey, regKey) = h.Type switch
        {
            HeadType.Atss => ("bbox_head.atss_cls", "bbox_head.atss_reg"),
            HeadType.Retinanet => ("bbox_head.retina_cls", "bbox_head.retina_reg"),
            _ => ("bbox_head.gfl_cls", "bbox_head.gfl_reg"),
        };
        for (int l = 0; l < levels.Count; l++)
        {
            var regTower = Tower(levels[l], "reg_convs", l);
            var cls = g.Op("Identity", ClsOutput(l), [Conv(Tower(levels[l], "cls_convs", l), clsKey, 1, $"cls_logits_p{l + 3}")]);
            var regRaw = Conv(regTower, regKey, 1, $"reg_p{l + 3}");
            var reg = retina ? g.Op("Identity", RegOutput(l), [regRaw])
                : g.Op("Mul", RegOutput(l), [regRaw, g.Initializer($"bbox_head.scales.{l}.scale", W($"bbox_head.scales.{l}.scale").reshape(1))]);
            raw.Add(new OnnxProto.ValueInfo(ClsOutput(l), OnnxProto.DataType.Float, ["batch", anchorsPerLocation * h.NumClasses, $"h_p{l + 3}", $"w_p{l + 3}"]));
            raw.Add(new OnnxProto.ValueInfo(RegOutput(l), OnnxProto.DataType.Float,
                ["batch", atss || retina ? 4 * anchorsPerLocation : 4 * (h.RegMax + 1), $"h_p{l + 3}", $"w_p{l + 3}"]));
            string scores, boxes;
            if (atss || retina)
            {
                string? centerness = null;
                if (atss)
                {
                    centerness = g.Op("Identity", CenternessOutput(l), [Conv(regTower, "bbox_head.atss_centerness", 1, $"centerness_p{l + 3}")]);
                    raw.Add(new OnnxProto.ValueInfo(CenternessOutput(l), OnnxProto.DataType.Float, ["batch", 1, $"h_p{l + 3}", $"w_p{l + 3}"]));
                }
                (scores, boxes) = DecodeDeltas(g, cls, reg, centerness, anchorGenerator, l, coder!, h.NumClasses, $"p{l + 3}");
            }
            else
                (scores, boxes) = Decode(g, cls, reg, project!, strides[l], h.NumClasses, h.RegMax, $"p{l + 3}");
            levelScores.Add(scores);
            levelBoxes.Add(g.Op("Min", $"boxes_clamped_p{l + 3}", [g.Op("Max", $"boxes_nonneg_p{l + 3}", [boxes, g.Float(0)]), limit]));
        }

        var input = new OnnxProto.ValueInfo(Input, OnnxProto.DataType.Float, ["batch", 3, "height", "width"]);
        var outputs = new List<OnnxProto.ValueInfo>();
        if (nms)
        {
            Nms(g, levelScores, levelBoxes, config);
            outputs.Add(new(Dets, OnnxProto.DataType.Float, ["batch", "detections", 5]));
            outputs.Add(new(Labels, OnnxProto.DataType.Int64, ["batch", "detections"]));
        }
        else
        {
            g.Op("Concat", Scores, levelScores, A.Attr("axis", 1L));
            g.Op("Concat", Boxes, levelBoxes, A.Attr("axis", 1L));
            outputs.Add(new(Scores, OnnxProto.DataType.Float, ["batch", "anchors", h.NumClasses]));
            outputs.Add(new(Boxes, OnnxProto.DataType.Float, ["batch", "anchors", 4]));
        }
        if (rawOutputs) outputs.AddRange(raw);
        return g.Build(h.Type.ToString().ToLowerInvariant(), [input], outputs);
    }

    public const string Dets = "dets";
    public const string Labels = "labels";

    /// <summary>gfl's post-processing (<see cref="Inference.GflPostprocessor"/>) in the graph, with mmdeploy's outputs:
    /// per level the <c>nms_pre</c> best (anchor, class) pairs (TopK over the flattened scores; pairs at or below
    /// <c>score_thr</c> drop out in the NMS), boxes without area removed (min_bbox_size), per-class NonMaxSuppression
    /// at <c>nms_iou</c>, then per image the <c>max_per_img</c> best. <c>dets</c> (N, D, 5) holds x1 y1 x2 y2 score and
    /// <c>labels</c> (N, D) the class index, by descending score; D = min(max_per_img, detections of the whole batch),
    /// and rows past an image's own detections have score 0 and label -1.</summary>
    static void Nms(OnnxGraphBuilder g, IReadOnlyList<string> levelScores, IReadOnlyList<string> levelBoxes, ModelConfig config)
    {
        var t = config.Test;
        long classes = config.Head.NumClasses;
        var candScores = new List<string>();
        var candLabels = new List<string>();
        var candBoxes = new List<string>();
        for (int l = 0; l < levelScores.Count; l++)
        {
            var level = $"p{l + 3}";
            var flat = g.Op("Reshape", $"pair_scores_{level}", [levelScores[l], g.Ints(0, -1)]);   // (N, A_l * C), class fastest
            var pairs = g.Op("Gather", $"pairs_{level}", [g.Op("Shape", $"pair_shape_{level}", [flat]), g.Ints(1)], A.Attr("axis", 0L));
            var k = g.Op("Min", $"k_{level}", [pairs, g.Ints(t.NmsPre)]);
            var top = g.OpMulti("TopK", [$"top_scores_{level}", $"top_pairs_{level}"], [flat, k], A.Attr("axis", 1L), A.Attr("largest", 1L), A.Attr("sorted", 1L));
            var anchor = g.Op("Div", $"top_anchor_{level}", [top[1], g.Ints(classes)]);
            candLabels.Add(g.Op("Mod", $"top_label_{level}", [top[1], g.Ints(classes)]));
            candScores.Add(top[0]);
            candBoxes.Add(g.Op("GatherND", $"top_boxes_{level}", [levelBoxes[l], g.Op("Unsqueeze", $"top_anchor3_{level}", [anchor, g.Ints(2)])],
                A.Attr("batch_dims", 1L)));
        }
        var scores = g.Op("Concat", "cand_scores", candScores, A.Attr("axis", 1L));   // (N, K)
        var labels = g.Op("Concat", "cand_labels", candLabels, A.Attr("axis", 1L));
        var boxes = g.Op("Concat", "cand_boxes", candBoxes, A.Attr("axis", 1L));      // (N, K, 4)

        // min_bbox_size: width and height must exceed it.
        string Coordinate(int i) => g.Op("Squeeze", $"cand_c{i}", [g.Op("Slice", $"cand_s{i}", [boxes, g.Ints(i), g.Ints(i + 1), g.Ints(2)]), g.Ints(2)]);
        var minSize = g.Float((float)t.MinBboxSize);
        var wide = g.Op("Greater", "cand_wide", [g.Op("Sub", "cand_w", [Coordinate(2), Coordinate(0)]), minSize]);
        var tall = g.Op("Greater", "cand_tall", [g.Op("Sub", "cand_h", [Coordinate(3), Coordinate(1)]), minSize]);
        scores = g.Op("Where", "cand_scores_sized", [g.Op("And", "cand_sized", [wide, tall]), scores, g.Float(0)]);

        // Per-class score planes (N, C, K): a pair's score in its class's plane, 0 elsewhere (removed by the threshold).
        var classIds = g.Op("Reshape", "class_ids", [g.Op("Range", "class_range", [g.IntScalar(0), g.IntScalar(classes), g.IntScalar(1)]), g.Ints(1, -1, 1)]);
        var inClass = g.Op("Equal", "cand_in_class", [g.Op("Unsqueeze", "cand_labels3", [labels, g.Ints(1)]), classIds]);
        var planes = g.Op("Where", "class_planes", [inClass, g.Op("Unsqueeze", "cand_scores3", [scores, g.Ints(1)]), g.Float(0)]);
        var selected = g.Op("NonMaxSuppression", "nms_selected", [boxes, planes, g.Ints(t.MaxPerImg),
            g.Op("Constant", "nms_iou", [], new OnnxProto.Attribute("value_float", Float: (float)t.NmsIou)),
            g.Op("Constant", "nms_score_thr", [], new OnnxProto.Attribute("value_float", Float: (float)t.ScoreThr))]);   // (S, 3) batch, class, pair

        // Per image the max_per_img best of the kept pairs (mmdeploy's batched top-k over a (N, S) masked score matrix).
        var selScores = g.Op("GatherND", "sel_scores", [planes, selected]);                                            // (S,)
        var selBoxes = g.Op("GatherND", "sel_boxes", [boxes, g.Op("Gather", "sel_batch_pair", [selected, g.Ints(0, 2)], A.Attr("axis", 1L))]);   // (S, 4)
        var selLabels = g.Op("Squeeze", "sel_labels", [g.Op("Slice", "sel_class", [selected, g.Ints(1), g.Ints(2), g.Ints(1)]), g.Ints(1)]);
        var selImage = g.Op("Squeeze", "sel_image", [g.Op("Slice", "sel_batch", [selected, g.Ints(0), g.Ints(1), g.Ints(1)]), g.Ints(1)]);
        var batch = g.Op("Gather", "batch_size", [g.Op("Shape", "scores_shape", [scores]), g.Ints(0)], A.Attr("axis", 0L));
        var images = g.Op("Unsqueeze", "image_ids", [g.Op("Range", "image_range", [g.IntScalar(0),
            g.Op("Squeeze", "batch_scalar", [batch, g.Ints(0)]), g.IntScalar(1)]), g.Ints(1)]);              // (N, 1)
        var mine = g.Op("Equal", "sel_mine", [images, g.Op("Unsqueeze", "sel_image_row", [selImage, g.Ints(0)])]);   // (N, S)
        var masked = g.Op("Where", "sel_masked", [mine, g.Op("Unsqueeze", "sel_scores_row", [selScores, g.Ints(0)]), g.Float(-1)]);
        var count = g.Op("Gather", "sel_count", [g.Op("Shape", "sel_shape", [selScores]), g.Ints(0)], A.Attr("axis", 0L));
        var d = g.Op("Min", "det_count", [count, g.Ints(t.MaxPerImg)]);
        var best = g.OpMulti("TopK", ["det_scores_raw", "det_pick"], [masked, d], A.Attr("axis", 1L), A.Attr("largest", 1L), A.Attr("sorted", 1L));
        var valid = g.Op("Greater", "det_valid", [best[0], g.Float(-0.5f)]);
        var detScores = g.Op("Where", "det_scores", [valid, best[0], g.Float(0)]);
        var detBoxes = g.Op("Gather", "det_boxes_raw", [selBoxes, best[1]], A.Attr("axis", 0L));                     // (N, D, 4)
        detBoxes = g.Op("Where", "det_boxes", [g.Op("Unsqueeze", "det_valid3", [valid, g.Ints(2)]), detBoxes, g.Float(0)]);
        g.Op("Concat", Dets, [detBoxes, g.Op("Unsqueeze", "det_scores3", [detScores, g.Ints(2)])], A.Attr("axis", 2L));
        g.Op("Where", Labels, [valid, g.Op("Gather", "det_labels_raw", [selLabels, best[1]], A.Attr("axis", 0L)), g.Ints(-1)]);
    }

    /// <summary>One level's (N, h·w, C) scores and (N, h·w, 4) boxes from its head outputs.</summary>
    static (string Scores, string Boxes) Decode(OnnxGraphBuilder g, string cls, string reg, string project, int stride,
        int numClasses, int regMax, string level)
    {
        var scores = g.Op("Sigmoid", $"scores_{level}", [g.Op("Reshape", $"cls_flat_{level}",
            [g.Op("Transpose", $"cls_nhwc_{level}", [cls], A.Attr("perm", 0L, 2L, 3L, 1L)), g.Ints(0, -1, numClasses)])]);
        var bins = g.Op("Reshape", $"bins_{level}",
            [g.Op("Transpose", $"reg_nhwc_{level}", [reg], A.Attr("perm", 0L, 2L, 3L, 1L)), g.Ints(0, -1, 4, regMax + 1)]);
        var expected = g.Op("MatMul", $"distance_bins_{level}", [g.Op("Softmax", $"bin_probs_{level}", [bins], A.Attr("axis", -1L)), project]);
        var distances = g.Op("Mul", $"distances_{level}", [expected, g.Float(stride)]);   // (N, A, 4) l t r b in pixels

        var points = Points(g, cls, stride, level);

        // distance2bbox: (x - l, y - t, x + r, y + b).
        var lt = g.Op("Slice", $"lt_{level}", [distances, g.Ints(0), g.Ints(2), g.Ints(-1)]);
        var rb = g.Op("Slice", $"rb_{level}", [distances, g.Ints(2), g.Ints(4), g.Ints(-1)]);
        var boxes = g.Op("Concat", $"boxes_{level}", [g.Op("Sub", $"x1y1_{level}", [points, lt]), g.Op("Add", $"x2y2_{level}", [points, rb])],
            A.Attr("axis", -1L));
        return (scores, boxes);
    }

    /// <summary>A level's anchor points (x·s, y·s), (h·w, 2), x fastest, from the runtime size of its map <paramref name="map"/>.</summary>
    static string Points(OnnxGraphBuilder g, string map, int stride, string level)
    {
        var shape = g.Op("Shape", $"shape_{level}", [map]);
        var h = g.Op("Gather", $"h_{level}", [shape, g.Ints(2)], A.Attr("axis", 0L));
        var w = g.Op("Gather", $"w_{level}", [shape, g.Ints(3)], A.Attr("axis", 0L));
        var hw = g.Op("Concat", $"hw_{level}", [h, w], A.Attr("axis", 0L));
        string Coordinates(string count, string axis) => g.Op("Mul", $"{axis}_{level}", [g.Op("Cast", $"{axis}_f_{level}",
            [g.Op("Range", $"{axis}_i_{level}", [g.IntScalar(0), count, g.IntScalar(1)])], A.Attr("to", (long)OnnxProto.DataType.Float)), g.Float(stride)]);
        var xs = g.Op("Expand", $"xs_grid_{level}", [g.Op("Unsqueeze", $"xs_row_{level}", [Coordinates(g.Op("Squeeze", $"w_s_{level}", [w, g.Ints(0)]), "xs"), g.Ints(0)]), hw]);
        var ys = g.Op("Expand", $"ys_grid_{level}", [g.Op("Unsqueeze", $"ys_col_{level}", [Coordinates(g.Op("Squeeze", $"h_s_{level}", [h, g.Ints(0)]), "ys"), g.Ints(1)]), hw]);
        return g.Op("Concat", $"points_{level}", [g.Op("Reshape", $"xs_flat_{level}", [xs, g.Ints(-1, 1)]),
            g.Op("Reshape", $"ys_flat_{level}", [ys, g.Ints(-1, 1)])], A.Attr("axis", 1L));   // (A, 2)
    }

    /// <summary>ATSS and RetinaNet: one level's (N, h·w·A, C) scores and (N, h·w·A, 4) boxes. Scores are sigmoid(cls),
    /// times sigmoid(centerness) for ATSS (mmdeploy's score for heads with score factors); boxes are the anchors
    /// (<see cref="AnchorGenerator.BaseAnchor"/> around the points, as <see cref="AnchorGenerator.LevelAnchors"/>)
    /// decoded as <see cref="GflTrainer.Boxes.DeltaXywhBoxCoder.Decode"/> does (dw, dh clamped at |log(16/1000)|).</summary>
    static (string Scores, string Boxes) DecodeDeltas(OnnxGraphBuilder g, string cls, string reg, string? centerness,
        AnchorGenerator anchorGenerator, int levelIndex, GflTrainer.Boxes.DeltaXywhBoxCoder coder, int numClasses, string level)
    {
        var scores = g.Op("Sigmoid", $"cls_probs_{level}", [g.Op("Reshape", $"cls_flat_{level}",
            [g.Op("Transpose", $"cls_nhwc_{level}", [cls], A.Attr("perm", 0L, 2L, 3L, 1L)), g.Ints(0, -1, numClasses)])]);
        if (centerness is not null)
        {
            var factors = g.Op("Sigmoid", $"centerness_probs_{level}", [g.Op("Reshape", $"centerness_flat_{level}", [centerness, g.Ints(0, -1, 1)])]);
            scores = g.Op("Mul", $"scores_{level}", [scores, factors]);
        }
        var deltas = g.Op("Reshape", $"deltas_{level}", [g.Op("Transpose", $"reg_nhwc_{level}", [reg], A.Attr("perm", 0L, 2L, 3L, 1L)), g.Ints(0, -1, 4)]);
        var denorm = g.Op("Add", $"deltas_denorm_{level}", [g.Op("Mul", $"deltas_scaled_{level}", [deltas,
            g.Floats(coder.Stds.Select(v => (float)v).ToArray())]), g.Floats(coder.Means.Select(v => (float)v).ToArray())]);
        var maxRatio = (float)Math.Abs(Math.Log(coder.WhRatioClip));
        var dxy = g.Op("Slice", $"dxy_{level}", [denorm, g.Ints(0), g.Ints(2), g.Ints(-1)]);
        var dwh = g.Op("Clip", $"dwh_{level}", [g.Op("Slice", $"dwh_raw_{level}", [denorm, g.Ints(2), g.Ints(4), g.Ints(-1)]),
            g.Float(-maxRatio), g.Float(maxRatio)]);
        // Anchors (h·w·A, 4) = base anchors (1, A, 4) + points (h·w, 1, 4), then the coder's centre and size.
        var points = Points(g, cls, anchorGenerator.Strides[levelIndex], level);
        float[] baseAnchors;
        using (var b = anchorGenerator.BaseAnchor(levelIndex)) baseAnchors = b.data<float>().ToArray();
        var shifts = g.Op("Unsqueeze", $"anchor_shifts_{level}", [g.Op("Concat", $"points4_{level}", [points, points], A.Attr("axis", 1L)), g.Ints(1)]);
        var anchors = g.Op("Reshape", $"anchors_{level}", [g.Op("Add", $"anchors_grid_{level}",
            [shifts, g.Op("Reshape", $"base_anchors_{level}", [g.Floats(baseAnchors), g.Ints(1, -1, 4)])]), g.Ints(-1, 4)]);
        var x1y1 = g.Op("Slice", $"anchor_x1y1_{level}", [anchors, g.Ints(0), g.Ints(2), g.Ints(-1)]);
        var x2y2 = g.Op("Slice", $"anchor_x2y2_{level}", [anchors, g.Ints(2), g.Ints(4), g.Ints(-1)]);
        var pxy = g.Op("Mul", $"anchor_centres_{level}", [g.Op("Add", $"anchor_sum_{level}", [x1y1, x2y2]), g.Float(0.5f)]);
        var pwh = g.Op("Sub", $"anchor_sizes_{level}", [x2y2, x1y1]);
        var gxy = g.Op("Add", $"gxy_{level}", [pxy, g.Op("Mul", $"gxy_offset_{level}", [pwh, dxy])]);
        var half = g.Op("Mul", $"gwh_half_{level}", [g.Op("Mul", $"gwh_{level}", [pwh, g.Op("Exp", $"dwh_exp_{level}", [dwh])]), g.Float(0.5f)]);
        var boxes = g.Op("Concat", $"boxes_{level}", [g.Op("Sub", $"x1y1_{level}", [gxy, half]), g.Op("Add", $"x2y2_{level}", [gxy, half])],
            A.Attr("axis", -1L));
        return (scores, boxes);
    }

    public static string ClsOutput(int level) => $"cls_score_p{level + 3}";
    public static string RegOutput(int level) => $"bbox_pred_p{level + 3}";
    public static string CenternessOutput(int level) => $"centerness_p{level + 3}";
}
