using GflTrainer.Checkpoints;
using GflTrainer.Model;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GflTrainer.Tests.Model;

/// <summary>One reference-size detector (R50, 80 classes) shared by the read-only tests of this class.</summary>
public sealed class ReferenceDetectorFixture : IDisposable
{
    internal GflDetector Detector { get; }

    public ReferenceDetectorFixture()
    {
        torch.manual_seed(0);
        Detector = GflDetector.Create();
    }

    public void Dispose() => Detector.Dispose();
}

public class GflDetectorTests(ReferenceDetectorFixture fixture) : IClassFixture<ReferenceDetectorFixture>
{
    private readonly GflDetector _detector = fixture.Detector;

    private static long Count(Module module) => module.parameters().Sum(p => p.numel());

    [Fact]
    public void ParameterCounts_EqualTheReferenceModel()
    {
        // gfl_spec.md §0: ResNet-50 w/o fc 23,508,032; FPN 3,868,672; head (80 classes, reg_max 16) 5,063,833.
        Assert.Equal(23_508_032, Count(_detector.Backbone));
        Assert.Equal(3_868_672, Count(_detector.Neck));
        Assert.Equal(5_063_833, Count(_detector.Head));
        Assert.Equal(32_440_537, Count(_detector));
    }

    [Fact]
    public void StateDict_UsesMmdetectionNames()
    {
        var shapes = _detector.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.shape);
        Assert.Equal(new long[] { 64, 3, 7, 7 }, shapes["backbone.conv1.weight"]);
        Assert.Equal(new long[] { 2048, 1024, 1, 1 }, shapes["backbone.layer4.0.downsample.0.weight"]);
        Assert.Equal(new long[] { 256, 2048, 1, 1 }, shapes["neck.lateral_convs.2.conv.weight"]);
        Assert.Equal(new long[] { 256 }, shapes["neck.fpn_convs.4.conv.bias"]);
        Assert.Equal(new long[] { 256, 256, 3, 3 }, shapes["bbox_head.cls_convs.3.conv.weight"]);
        Assert.Equal(new long[] { 256 }, shapes["bbox_head.reg_convs.0.gn.bias"]);
        Assert.Equal(new long[] { 80, 256, 3, 3 }, shapes["bbox_head.gfl_cls.weight"]);
        Assert.Equal(new long[] { 68 }, shapes["bbox_head.gfl_reg.bias"]);
        Assert.Equal(Array.Empty<long>(), shapes["bbox_head.scales.4.scale"]);
        // Tower convs have no bias (a norm follows), the FPN has no norm, there is no classifier.
        Assert.DoesNotContain("bbox_head.cls_convs.0.conv.bias", shapes.Keys);
        Assert.DoesNotContain(shapes.Keys, k => k.StartsWith("neck.", StringComparison.Ordinal) && k.Contains(".gn."));
        Assert.DoesNotContain(shapes.Keys, k => k.StartsWith("backbone.fc", StringComparison.Ordinal));
        Assert.DoesNotContain("bbox_head.scales.5.scale", shapes.Keys);
    }

    [Fact]
    public void Forward_OnOddInputSize_GivesCeilHalvedLevelsWithReferenceChannels()
    {
        using var scope = NewDisposeScope();
        _detector.eval();
        using var _ = no_grad();
        var outputs = _detector.forward(randn(1, 3, 97, 131));
        // 97x131 -> conv1 s2: 49x66 -> maxpool: 25x33 -> C3 13x17, C4 7x9, C5 4x5 -> P6 2x3 -> P7 1x2 (ceil halving).
        var expected = new (long H, long W)[] { (13, 17), (7, 9), (4, 5), (2, 3), (1, 2) };
        Assert.Equal(5, outputs.ClassScores.Count);
        Assert.Equal(5, outputs.BoxPredictions.Count);
        for (int level = 0; level < 5; level++)
        {
            Assert.Equal(new long[] { 1, 80, expected[level].H, expected[level].W }, outputs.ClassScores[level].shape);
            Assert.Equal(new long[] { 1, 68, expected[level].H, expected[level].W }, outputs.BoxPredictions[level].shape);
            Assert.Equal(ScalarType.Float32, outputs.BoxPredictions[level].dtype);
        }
        Assert.Equal(new[] { 8, 16, 32, 64, 128 }, _detector.Strides);
    }

    [Fact]
    public void Initialization_FollowsMmdetection()
    {
        var p = _detector.state_dict();
        // Focal-loss prior: sigmoid(bias) = 0.01  =>  bias = -log(0.99 / 0.01) = -4.59512.
        Assert.True(p["bbox_head.gfl_cls.bias"].allclose(full(80, -4.59512f), rtol: 0, atol: 1e-5));
        Assert.Equal(0, p["bbox_head.gfl_reg.bias"].abs().sum().item<float>());
        for (int level = 0; level < 5; level++) Assert.Equal(1f, p[$"bbox_head.scales.{level}.scale"].item<float>());
        // Normal(0, 0.01): the sample std of 589,824 draws is 0.01 within 1%.
        Assert.InRange(p["bbox_head.cls_convs.0.conv.weight"].std().item<float>(), 0.0099, 0.0101);
        // Xavier uniform on the FPN: |w| <= sqrt(6 / (fan_in + fan_out)), std = bound / sqrt(3); bias 0.
        var lateral = p["neck.lateral_convs.2.conv.weight"];
        double bound = Math.Sqrt(6.0 / (2048 + 256));
        Assert.True(lateral.abs().max().item<float>() <= bound);
        Assert.InRange(lateral.std().item<float>(), 0.99 * bound / Math.Sqrt(3), 1.01 * bound / Math.Sqrt(3));
        Assert.Equal(0, p["neck.fpn_convs.3.conv.bias"].abs().sum().item<float>());
        // GroupNorm gamma 1, beta 0 as PyTorch (TorchSharp leaves them uninitialised).
        foreach (var tower in new[] { "cls_convs", "reg_convs" })
            for (int i = 0; i < 4; i++)
            {
                Assert.True(p[$"bbox_head.{tower}.{i}.gn.weight"].IsIdenticalTo(ones(256)));
                Assert.True(p[$"bbox_head.{tower}.{i}.gn.bias"].IsIdenticalTo(zeros(256)));
            }
    }
}
