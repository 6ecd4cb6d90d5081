using GflTrainer.Model;
using GflTrainer.Tests.Support;
using GflTrainer.Training.Losses;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Training.Losses;

/// <summary>ATSS's losses against mmdetection's ATSSHead.loss_by_feat transcribed in scripts/reference/gflref/atss_loss.py
/// (fixtures of make_dense_head_fixtures.py on the gts of every head_loss case): per-level terms, normalisers and the
/// gradients with respect to every head output.</summary>
public class AtssLossTests
{
    public static IEnumerable<object[]> Cases => TestPaths.JsonCases("gfl", "atss_loss");

    [Theory]
    [MemberData(nameof(Cases))]
    public void Loss_MatchesMmdetection_LossesNormalisersAndGradients(string file)
    {
        using var scope = NewDisposeScope();
        var f = GflFixture.Load("atss_loss", file);
        var p = f.Params;
        var loss = new AtssLoss(p.GetProperty("num_classes").GetInt32(), GflFixture.Ints(p.GetProperty("strides")), p.GetProperty("topk").GetInt32());
        Tensor[] Grad(string name) => GflFixture.ToTensors(f.Inputs.GetProperty(name)).Select(t => t.requires_grad_(true)).ToArray();
        var cls = Grad("cls_scores");
        var box = Grad("bbox_preds");
        var ctr = Grad("centernesses");
        var b = loss.Compute(new HeadOutputs(cls, box) { Centerness = ctr }, GflFixture.ToTensors(f.Inputs.GetProperty("gt_bboxes")),
            GflFixture.ToTensors(f.Inputs.GetProperty("gt_labels")), GflFixture.Shapes(p.GetProperty("image_pad_shapes")));

        var e = f.Expected;
        void Levels(string key, IReadOnlyList<Tensor> actual)
        {
            var values = GflFixture.Doubles(e.GetProperty(key));
            Assert.Equal(values.Length, actual.Count);
            for (int l = 0; l < values.Length; l++) TensorAssert.Scalar(values[l], actual[l], 1e-7, 1e-5, $"{file} {key} P{l + 3}");
        }
        Levels("loss_cls", b.ClsPerLevel);
        Levels("loss_bbox", b.BoxPerLevel);
        Levels("loss_centerness", b.CenternessPerLevel);
        TensorAssert.Scalar(e.GetProperty("total_loss").GetDouble(), b.Total, 1e-6, 1e-5, $"{file} total");
        Assert.Equal(GflFixture.Longs(e.GetProperty("num_pos_per_image")), b.Targets.PositivesPerImage.ToArray());
        Assert.Equal(e.GetProperty("avg_factor").GetDouble(), b.ClsAvgFactor.item<double>());
        TensorAssert.Close(tensor(GflFixture.Doubles(e.GetProperty("centerness_sum_per_level"))).to(float32), b.CenternessSumPerLevel, 1e-5, 1e-6, $"{file} centerness sums");
        Assert.Equal(e.GetProperty("bbox_avg_factor").GetDouble(), b.BoxAvgFactor.item<float>(), 4);
        Assert.Equal(["loss_cls", "loss_bbox", "loss_centerness"], b.ToScalars().Terms.Select(t => t.Name));

        b.Total.backward();
        void Grads(string key, Tensor[] inputs)
        {
            var expected = GflFixture.ToTensors(e.GetProperty(key));
            for (int l = 0; l < inputs.Length; l++) TensorAssert.Close(expected[l], inputs[l].grad!, 1e-7, 1e-4, $"{file} {key} P{l + 3}");
        }
        Grads("grad_cls_scores", cls);
        Grads("grad_bbox_preds", box);
        Grads("grad_centernesses", ctr);
    }
}
