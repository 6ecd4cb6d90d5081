using GflTrainer.Model;
using GflTrainer.Tests.Support;
using GflTrainer.Training.Losses;
using GflTrainer.Training.Targets;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Training.Losses;

/// <summary>RetinaNet's losses against mmdetection's AnchorHead.loss_by_feat transcribed in
/// scripts/reference/gflref/retina.py (fixtures of make_dense_head_fixtures.py on the gts of every head_loss case, L1
/// and, for one, GIoU): the 9 anchors per location bit for bit, every anchor's label and the weights, per-level losses,
/// the normaliser and the gradients with respect to every head output.</summary>
public class RetinaLossTests
{
    public static IEnumerable<object[]> Cases => TestPaths.JsonCases("gfl", "retina_loss");

    [Theory]
    [MemberData(nameof(Cases))]
    public void Loss_MatchesMmdetection_TargetsLossesAndGradients(string file)
    {
        using var scope = NewDisposeScope();
        var f = GflFixture.Load("retina_loss", file);
        var p = f.Params;
        var a = p.GetProperty("anchor_generator");
        var asg = p.GetProperty("assigner");
        bool giou = p.GetProperty("loss_bbox").GetProperty("type").GetString() == "GIoULoss";
        var loss = new RetinaLoss(p.GetProperty("num_classes").GetInt32(),
            new AnchorGenerator(GflFixture.Ints(p.GetProperty("strides")), a.GetProperty("octave_base_scale").GetDouble(),
                a.GetProperty("scales_per_octave").GetInt32(), GflFixture.Doubles(a.GetProperty("ratios"))),
            new MaxIouAssigner(asg.GetProperty("pos_iou_thr").GetDouble(), asg.GetProperty("neg_iou_thr").GetDouble(),
                asg.GetProperty("min_pos_iou").GetDouble()),
            giou: giou ? new GiouLoss(p.GetProperty("loss_bbox").GetProperty("loss_weight").GetDouble()) : null);
        Tensor[] Grad(string name) => GflFixture.ToTensors(f.Inputs.GetProperty(name)).Select(t => t.requires_grad_(true)).ToArray();
        var cls = Grad("cls_scores");
        var box = Grad("bbox_preds");
        var b = loss.Compute(new HeadOutputs(cls, box), GflFixture.ToTensors(f.Inputs.GetProperty("gt_bboxes")),
            GflFixture.ToTensors(f.Inputs.GetProperty("gt_labels")), GflFixture.Shapes(p.GetProperty("image_pad_shapes")));

        var e = f.Expected;
        // Anchors bit for bit (float32 arithmetic in mmdetection's order), labels and weights of every anchor.
        TensorAssert.Equal(GflFixture.ToTensor(e.GetProperty("anchors_p3_head")), b.Targets.Anchors.narrow(0, 0, 36), $"{file} P3 anchors");
        TensorAssert.Equal(GflFixture.ToTensor(e.GetProperty("anchors_tail")), b.Targets.Anchors.narrow(0, b.Targets.Anchors.shape[0] - 9, 9), $"{file} last anchors");
        TensorAssert.Equal(GflFixture.ToTensor(e.GetProperty("labels")), b.Targets.Labels, $"{file} labels");
        Assert.Equal(GflFixture.Longs(e.GetProperty("label_weight_sum_per_image")),
            b.Targets.LabelWeights.sum(1).to(int64).data<long>().ToArray());
        Assert.Equal(GflFixture.Longs(e.GetProperty("num_pos_per_image")), b.Targets.PositivesPerImage.ToArray());
        Assert.Equal(e.GetProperty("avg_factor").GetDouble(), b.AvgFactor.item<double>());

        void Levels(string key, IReadOnlyList<Tensor> actual)
        {
            var values = GflFixture.Doubles(e.GetProperty(key));
            Assert.Equal(values.Length, actual.Count);
            for (int l = 0; l < values.Length; l++) TensorAssert.Scalar(values[l], actual[l], 1e-7, 1e-5, $"{file} {key} P{l + 3}");
        }
        Levels("loss_cls", b.ClsPerLevel);
        Levels("loss_bbox", b.BoxPerLevel);
        TensorAssert.Scalar(e.GetProperty("total_loss").GetDouble(), b.Total, 1e-6, 1e-5, $"{file} total");
        Assert.Equal(["loss_cls", "loss_bbox"], b.ToScalars().Terms.Select(t => t.Name));

        b.Total.backward();
        void Grads(string key, Tensor[] inputs)
        {
            var expected = GflFixture.ToTensors(e.GetProperty(key));
            for (int l = 0; l < inputs.Length; l++) TensorAssert.Close(expected[l], inputs[l].grad!, 1e-7, 1e-4, $"{file} {key} P{l + 3}");
        }
        Grads("grad_cls_scores", cls);
        Grads("grad_bbox_preds", box);
    }
}
