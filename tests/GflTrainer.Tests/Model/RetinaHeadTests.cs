using GflTrainer.Config;
using GflTrainer.Model;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Model;

/// <summary>mmdetection's RetinaHead and RetinaNet's FPN ('on_input'): parameter names and shapes (so its checkpoints
/// convert), counts equal to the PyTorch reference's (scripts/reference/gflref, num_parameters), init and outputs.</summary>
public class RetinaHeadTests
{
    [Fact]
    public void StateDict_UsesMmdetectionNames_AndTheReferenceParameterCount()
    {
        using var head = new RetinaHead(80);
        var shapes = head.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.shape);
        Assert.Equal(new long[] { 256, 256, 3, 3 }, shapes["cls_convs.3.conv.weight"]);
        Assert.Equal(new long[] { 256 }, shapes["reg_convs.0.conv.bias"]);   // no norm: the conv has its bias (mmcv)
        Assert.Equal(new long[] { 720, 256, 3, 3 }, shapes["retina_cls.weight"]);
        Assert.Equal(new long[] { 36, 256, 3, 3 }, shapes["retina_reg.weight"]);
        Assert.DoesNotContain(shapes.Keys, k => k.Contains(".gn.") || k.StartsWith("scales"));
        // 8 tower convs of 590,080 + cls 1,659,600 + reg 82,980: the reference's 6,463,220.
        Assert.Equal(6_463_220, head.parameters().Sum(p => p.numel()));
    }

    [Fact]
    public void R50Detector_HasTheOnInputFpn_AndTheReferenceParameterCount()
    {
        using var model = DetectorFactory.CreateDetector(ConfigLoader.Load(Path.Combine(TestPaths.RepoRoot(), "configs", "retinanet_r50_1x.yaml"),
            ["model.backbone.pretrained=null"]).Model);
        var shapes = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.shape);
        Assert.Equal(new long[] { 256, 2048, 3, 3 }, shapes["neck.fpn_convs.3.conv.weight"]);   // P6 from C5
        Assert.Equal(new long[] { 256, 256, 3, 3 }, shapes["neck.fpn_convs.4.conv.weight"]);
        Assert.Equal(37_968_692, model.parameters().Sum(p => p.numel()));   // gflref GflDetector(80, 50, head='retinanet')
    }

    [Fact]
    public void Initialization_FollowsMmdetection()
    {
        torch.manual_seed(0);
        using var head = new RetinaHead(80);
        var p = head.state_dict();
        Assert.True(p["retina_cls.bias"].allclose(full(720, -4.59512f), rtol: 0, atol: 1e-5));   // sigmoid = 0.01
        Assert.Equal(0, p["retina_reg.bias"].abs().sum().item<float>());
        Assert.Equal(0, p["cls_convs.2.conv.bias"].abs().sum().item<float>());
        Assert.InRange(p["reg_convs.2.conv.weight"].std().item<float>(), 0.0099, 0.0101);
    }

    [Fact]
    public void Forward_GivesNineAnchorsOfClassesAndDeltas_AfterReluTowers()
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(1);
        using var head = new RetinaHead(3, inChannels: 16, featureChannels: 16, stackedConvs: 2);
        var features = new[] { randn(2, 16, 10, 12), randn(2, 16, 5, 6) };
        var o = head.forward(features);
        Assert.Equal(new long[] { 2, 27, 10, 12 }, o.ClassScores[0].shape);
        Assert.Equal(new long[] { 2, 36, 5, 6 }, o.BoxPredictions[1].shape);
        Assert.Null(o.Centerness);
        // The towers end in a ReLU: with the predictor's weights set to 1 and bias 0, every output is a sum of
        // non-negative tower activations.
        using (no_grad())
        {
            var sd = head.state_dict();
            sd["retina_reg.weight"].fill_(1);
            Assert.True((head.forward(features).BoxPredictions[0] >= 0).all().item<bool>());
        }
    }
}
