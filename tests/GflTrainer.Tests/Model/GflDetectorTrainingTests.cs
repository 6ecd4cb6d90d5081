using GflTrainer.Checkpoints;
using GflTrainer.Model;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GflTrainer.Tests.Model;

/// <summary>Train-mode behaviour on a small detector (R18 at width 16, 8-class head) so one step is cheap.</summary>
public class GflDetectorTrainingTests
{
    private static GflDetector SmallDetector(bool normEval)
    {
        torch.manual_seed(1);
        var detector = GflDetector.Create(depth: 18, numClasses: 8, regMax: 16, frozenStages: 1, normEval: normEval,
            fpnChannels: 64, stackedConvs: 2, groupNormGroups: 32, backboneBaseChannels: 16);
        // Real statistics so a moving running mean would be visible (fresh BN has mean 0, var 1).
        WeightLoader.LoadTorchvisionBackbone(detector, TestPaths.Fixtures("Model", "resnet18_w16.safetensors"));
        return detector;
    }

    private static Dictionary<string, Tensor> Snapshot(Module module) =>
        module.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());

    private static Tensor Loss(HeadOutputs outputs) =>
        outputs.ClassScores.Concat(outputs.BoxPredictions).Select(t => t.pow(2).mean()).Aggregate((a, b) => a + b);

    [Fact]
    public void SgdStep_LeavesFrozenStagesWithoutGradientAndUnchanged()
    {
        using var scope = NewDisposeScope();
        using var detector = SmallDetector(normEval: true);
        detector.train();
        var trainable = detector.parameters().Where(p => p.requires_grad).ToList();
        using var sgd = optim.SGD(trainable, 0.1, momentum: 0.9, weight_decay: 1e-4);
        var before = Snapshot(detector);
        sgd.zero_grad();
        Loss(detector.forward(randn(2, 3, 64, 96))).backward();
        sgd.step();

        var named = detector.named_parameters().ToList();
        var frozen = named.Where(p => p.name.StartsWith("backbone.", StringComparison.Ordinal)
            && ResNetTests.IsStemOrLayer1(p.name["backbone.".Length..])).ToList();
        Assert.Equal(3 + 2 * 6, frozen.Count); // conv1, bn1 w/b; 2 blocks x (conv1, bn1 w/b, conv2, bn2 w/b)
        foreach (var (name, p) in frozen)
        {
            Assert.False(p.requires_grad, name);
            Assert.True(p.grad is null, name);
            Assert.True(p.IsIdenticalTo(before[name]), name);
        }
        foreach (var name in new[] { "backbone.layer2.0.conv1.weight", "backbone.layer2.0.bn1.weight",
                     "neck.fpn_convs.0.conv.weight", "bbox_head.gfl_reg.weight", "bbox_head.scales.0.scale" })
            Assert.False(detector.state_dict()[name].IsIdenticalTo(before[name]), $"{name} should have been updated");
    }

    [Fact]
    public void TrainForward_WithNormEval_NeverMovesBatchNormStatistics()
    {
        using var scope = NewDisposeScope();
        using var detector = SmallDetector(normEval: true);
        detector.train();
        var before = Snapshot(detector);
        using (no_grad()) detector.forward(randn(2, 3, 64, 96) * 3 + 1);
        foreach (var (name, value) in detector.state_dict().Where(kv => kv.Key.Contains("running_")))
            Assert.True(value.IsIdenticalTo(before[name]), name);
        Assert.All(detector.Backbone.modules().OfType<BatchNorm2d>(), bn => Assert.False(bn.training));
        Assert.True(detector.Head.training);
    }

    [Fact]
    public void TrainForward_WithoutNormEval_MovesUnfrozenBatchNormStatisticsOnly()
    {
        // The counterpart that shows the norm_eval test above can fail.
        using var scope = NewDisposeScope();
        using var detector = SmallDetector(normEval: false);
        detector.train();
        var before = Snapshot(detector);
        using (no_grad()) detector.forward(randn(2, 3, 64, 96) * 3 + 1);
        var now = detector.state_dict();
        Assert.False(now["backbone.layer2.0.bn1.running_mean"].IsIdenticalTo(before["backbone.layer2.0.bn1.running_mean"]));
        Assert.True(now["backbone.layer1.0.bn1.running_mean"].IsIdenticalTo(before["backbone.layer1.0.bn1.running_mean"]));
        Assert.True(now["backbone.bn1.running_var"].IsIdenticalTo(before["backbone.bn1.running_var"]));
    }

    [Fact]
    public void Eval_ThenTrain_RestoresFreezeAndNormEval()
    {
        using var detector = SmallDetector(normEval: true);
        detector.eval();
        detector.train();
        Assert.All(detector.Backbone.modules().OfType<BatchNorm2d>(), bn => Assert.False(bn.training));
        var layer2 = detector.Backbone.named_modules().Single(m => m.name == "layer2.0.conv1").module;
        Assert.True(layer2.training);
    }
}
