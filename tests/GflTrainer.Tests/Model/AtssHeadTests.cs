using GflTrainer.Model;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Model;

/// <summary>mmdetection's ATSSHead structure: parameter names and shapes (so its checkpoints convert), count, init and
/// per-level outputs.</summary>
public class AtssHeadTests
{
    [Fact]
    public void StateDict_UsesMmdetectionNames_AndTheReferenceParameterCount()
    {
        using var head = new AtssHead(80);
        var shapes = head.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.shape);
        Assert.Equal(new long[] { 256, 256, 3, 3 }, shapes["cls_convs.3.conv.weight"]);
        Assert.Equal(new long[] { 256 }, shapes["reg_convs.0.gn.bias"]);
        Assert.Equal(new long[] { 80, 256, 3, 3 }, shapes["atss_cls.weight"]);
        Assert.Equal(new long[] { 4, 256, 3, 3 }, shapes["atss_reg.weight"]);
        Assert.Equal(new long[] { 1 }, shapes["atss_centerness.bias"]);
        Assert.Equal(Array.Empty<long>(), shapes["scales.4.scale"]);
        Assert.DoesNotContain(shapes.Keys, k => k.Contains("cls_convs.0.conv.bias"));   // conv before GN: no bias (mmcv)
        // 8 tower convs 8 x 589,824 + 8 GN x 512 + cls 184,400 + reg 9,220 + centerness 2,305 + 5 scales.
        Assert.Equal(4_918_618, head.parameters().Sum(p => p.numel()));
    }

    [Fact]
    public void Initialization_FollowsMmdetection()
    {
        torch.manual_seed(0);
        using var head = new AtssHead(80);
        var p = head.state_dict();
        Assert.True(p["atss_cls.bias"].allclose(full(80, -4.59512f), rtol: 0, atol: 1e-5));   // sigmoid = 0.01
        Assert.Equal(0, p["atss_reg.bias"].abs().sum().item<float>());
        Assert.Equal(0, p["atss_centerness.bias"].abs().sum().item<float>());
        Assert.InRange(p["reg_convs.2.conv.weight"].std().item<float>(), 0.0099, 0.0101);
        Assert.InRange(p["atss_cls.weight"].std().item<float>(), 0.0098, 0.0102);
        Assert.True(p["cls_convs.1.gn.weight"].IsIdenticalTo(ones(256)));
    }

    [Fact]
    public void Forward_GivesClassDeltaAndCenternessMapsPerLevel()
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(1);
        using var head = new AtssHead(3, inChannels: 16, featureChannels: 16, stackedConvs: 2, groupNormGroups: 4, levels: 2);
        var features = new[] { randn(2, 16, 10, 12), randn(2, 16, 5, 6) };
        var o = head.forward(features);
        Assert.Equal(new long[] { 2, 3, 10, 12 }, o.ClassScores[0].shape);
        Assert.Equal(new long[] { 2, 4, 5, 6 }, o.BoxPredictions[1].shape);
        Assert.Equal(ScalarType.Float32, o.BoxPredictions[1].dtype);
        Assert.NotNull(o.Centerness);
        Assert.Equal(new long[] { 2, 1, 5, 6 }, o.Centerness![1].shape);
        // The centerness branch reads the regression tower: it changes with reg_convs, not with cls_convs.
        using (no_grad())
        {
            var before = o.Centerness[0].clone();
            var cls = o.ClassScores[0].clone();
            head.state_dict()["cls_convs.0.conv.weight"].mul_(-3);
            var after = head.forward(features);
            TensorAssertEqual(before, after.Centerness![0]);
            Assert.False(cls.allclose(after.ClassScores[0], rtol: 0, atol: 0), "the change did not reach the classification branch");
        }
        Assert.Throws<ArgumentException>(() => head.forward(new[] { features[0] }));
    }

    static void TensorAssertEqual(Tensor a, Tensor b) => Assert.True(a.allclose(b, rtol: 0, atol: 0), "centerness changed with the classification tower");
}
