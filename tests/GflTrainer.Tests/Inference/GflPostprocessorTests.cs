using GflTrainer.Data;
using GflTrainer.Model;
using GflTrainer.Tests.Support;
using Xunit;
using GflTrainer.Inference;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Inference;

public class GflPostprocessorTests
{
    public static IEnumerable<object[]> Cases => TestPaths.JsonCases("gfl", "postprocess");

    private static GflPostprocessor Create(GflFixture f)
    {
        var p = f.Params;
        return new GflPostprocessor(
            new AnchorGenerator(GflFixture.Ints(p.GetProperty("strides"))),
            p.GetProperty("reg_max").GetInt32(),
            p.GetProperty("nms_pre").GetInt32(),
            p.GetProperty("score_thr").GetDouble(),
            p.GetProperty("iou_threshold").GetDouble(),
            p.GetProperty("max_per_img").GetInt32(),
            p.GetProperty("min_bbox_size").GetDouble());
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void PredictSingle_MatchesMmdetection(string file)
    {
        using var scope = NewDisposeScope();
        var f = GflFixture.Load("postprocess", file);
        var post = Create(f);
        var cls = GflFixture.ToTensors(f.Inputs.GetProperty("cls_scores"));
        var box = GflFixture.ToTensors(f.Inputs.GetProperty("bbox_preds"));
        var imageShape = GflFixture.Shape(f.Inputs.GetProperty("img_shape"));
        var scale = GflFixture.Doubles(f.Inputs.GetProperty("scale_factor"));

        var candidates = post.Candidates(cls, box, imageShape, scale[0], scale[1]);
        var pre = f.Expected.GetProperty("pre_nms");
        TensorAssert.Equal(GflFixture.ToTensor(pre.GetProperty("labels")), candidates.Labels, $"{file} pre-NMS labels");
        TensorAssert.Close(GflFixture.ToTensor(pre.GetProperty("scores")), candidates.Scores, 1e-6, 0, $"{file} pre-NMS scores");
        TensorAssert.Close(GflFixture.ToTensor(pre.GetProperty("bboxes")), candidates.Boxes, 1e-4, 1e-6, $"{file} pre-NMS boxes");
        var levels = f.Expected.GetProperty("per_level").EnumerateArray().ToArray();
        Assert.Equal(levels.Select(l => l.GetProperty("num_above_thr").GetInt64()), candidates.AboveThresholdPerLevel);
        Assert.Equal(levels.Select(l => l.GetProperty("num_kept").GetInt64()), candidates.KeptPerLevel);
        var sizes = candidates.Boxes.numel() == 0 ? 0 :
            ((candidates.Boxes[TensorIndex.Colon, 2] > candidates.Boxes[TensorIndex.Colon, 0]) &
             (candidates.Boxes[TensorIndex.Colon, 3] > candidates.Boxes[TensorIndex.Colon, 1])).sum().item<long>();
        Assert.Equal(f.Expected.GetProperty("num_after_size_filter").GetInt64(), sizes);

        var detections = post.PredictSingle(cls, box, imageShape, scale[0], scale[1]);
        TensorAssert.Equal(f.Output("labels"), detections.Labels, $"{file} labels");
        TensorAssert.Close(f.Output("scores"), detections.Scores, 1e-6, 0, $"{file} scores");
        TensorAssert.Close(f.Output("bboxes"), detections.Boxes, 1e-4, 1e-6, $"{file} boxes");
    }

    [Fact]
    public void Predict_OnABatch_MapsEachImageBack_AndUndoesTheFlip()
    {
        using var scope = NewDisposeScope();
        var f = GflFixture.Load("postprocess", "dense.json");   // its scale factor is an exact ratio of integer sizes
        var post = Create(f);
        var cls = GflFixture.ToTensors(f.Inputs.GetProperty("cls_scores"));
        var box = GflFixture.ToTensors(f.Inputs.GetProperty("bbox_preds"));
        var imageShape = GflFixture.Shape(f.Inputs.GetProperty("img_shape"));
        var padShape = GflFixture.Shape(f.Inputs.GetProperty("pad_shape"));
        var scale = GflFixture.Doubles(f.Inputs.GetProperty("scale_factor"));
        var (originalH, originalW) = ((int)Math.Round(imageShape.H / scale[1]), (int)Math.Round(imageShape.W / scale[0]));
        Assert.Equal(scale[0], (double)imageShape.W / originalW);   // the fixture's scale is resized / original
        ImageMeta Meta(bool flipped) => new(1, "a.jpg", originalH, originalW, imageShape.H, imageShape.W,
            padShape.H, padShape.W, (float)scale[0], (float)scale[1], flipped);
        var outputs = new HeadOutputs(cls.Select(t => stack(new[] { t, t }, 0)).ToArray(), box.Select(t => stack(new[] { t, t }, 0)).ToArray());

        var results = post.Predict(outputs, new[] { Meta(false), Meta(true) });

        Assert.Equal(2, results.Count);
        var expected = f.Output("bboxes");
        TensorAssert.Equal(f.Output("labels"), results[0].Labels, "image 0 labels");
        TensorAssert.Close(expected, results[0].Boxes, 1e-4, 1e-6, "image 0 boxes");
        var mirrored = stack(new[]
        {
            originalW - expected[TensorIndex.Colon, 2], expected[TensorIndex.Colon, 1],
            originalW - expected[TensorIndex.Colon, 0], expected[TensorIndex.Colon, 3],
        }, -1);
        TensorAssert.Equal(f.Output("labels"), results[1].Labels, "image 1 labels");
        TensorAssert.Close(mirrored, results[1].Boxes, 1e-4, 1e-6, "image 1 boxes (flipped back)");
    }
}
