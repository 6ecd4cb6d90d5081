using GflTrainer.Boxes;
using GflTrainer.Inference;
using GflTrainer.Model;
using GflTrainer.Tests.Support;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Inference;

/// <summary>RetinaNet's test-time path (9 anchors per location selected as (anchor, class) pairs, DeltaXYWH decode with
/// stds 1, NMS 0.5) against mmdetection's BaseDenseHead._predict_by_feat_single transcribed in
/// scripts/reference/gflref/retina.py.</summary>
public class RetinaPostprocessTests
{
    public static IEnumerable<object[]> Cases => TestPaths.JsonCases("gfl", "retina_postprocess");

    [Theory]
    [MemberData(nameof(Cases))]
    public void PredictSingle_MatchesMmdetection(string file)
    {
        using var scope = NewDisposeScope();
        var f = GflFixture.Load("retina_postprocess", file);
        var p = f.Params;
        var a = p.GetProperty("anchor_generator");
        var anchors = new AnchorGenerator(GflFixture.Ints(p.GetProperty("strides")), a.GetProperty("octave_base_scale").GetDouble(),
            a.GetProperty("scales_per_octave").GetInt32(), GflFixture.Doubles(a.GetProperty("ratios")));
        var post = new GflPostprocessor(anchors, nmsPre: p.GetProperty("nms_pre").GetInt32(),
            scoreThreshold: p.GetProperty("score_thr").GetDouble(), iouThreshold: p.GetProperty("iou_threshold").GetDouble(),
            maxPerImage: p.GetProperty("max_per_img").GetInt32(), minBoxSize: p.GetProperty("min_bbox_size").GetDouble(),
            deltaCoder: new DeltaXywhBoxCoder());
        var cls = GflFixture.ToTensors(f.Inputs.GetProperty("cls_scores"));
        var box = GflFixture.ToTensors(f.Inputs.GetProperty("bbox_preds"));
        var shape = GflFixture.Shape(f.Inputs.GetProperty("img_shape"));
        var scale = GflFixture.Doubles(f.Inputs.GetProperty("scale_factor"));

        var candidates = post.Candidates(cls, box, shape, scale[0], scale[1]);
        var pre = f.Expected.GetProperty("pre_nms");
        TensorAssert.Equal(GflFixture.ToTensor(pre.GetProperty("labels")), candidates.Labels, $"{file} pre-NMS labels");
        TensorAssert.Close(GflFixture.ToTensor(pre.GetProperty("scores")), candidates.Scores, 1e-6, 1e-6, $"{file} pre-NMS scores");
        TensorAssert.Close(GflFixture.ToTensor(pre.GetProperty("bboxes")).reshape(-1, 4), candidates.Boxes, 1e-4, 1e-6, $"{file} pre-NMS boxes");

        var d = post.PredictSingle(cls, box, shape, scale[0], scale[1]);
        TensorAssert.Equal(f.Output("labels"), d.Labels, $"{file} labels");
        TensorAssert.Close(f.Output("scores"), d.Scores, 1e-6, 1e-6, $"{file} scores");
        TensorAssert.Close(f.Output("bboxes").reshape(-1, 4), d.Boxes, 1e-4, 1e-6, $"{file} boxes");
        // Centerness maps belong to ATSS: refused here rather than silently multiplied in.
        Assert.Throws<ArgumentException>(() => post.PredictSingle(cls, box, shape, scale[0], scale[1], cls.Select(c => c.narrow(0, 0, 1)).ToList()));
    }
}
