using GflTrainer.Checkpoints;
using GflTrainer.Model;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Model;

/// <summary>Whole detector against the PyTorch reference of scripts/make_model_fixtures.py (tiny widths, odd input).</summary>
public class GflDetectorReferenceTests
{
    [Fact]
    public void Forward_WithReferenceWeights_MatchesPyTorchHeadOutputsOnEveryLevel()
    {
        using var scope = NewDisposeScope();
        using var detector = GflDetector.Create(depth: 18, numClasses: 3, regMax: 4, fpnChannels: 32, stackedConvs: 2,
            groupNormGroups: 8, backboneBaseChannels: 16);
        WeightLoader.LoadTorchvisionBackbone(detector, TestPaths.Fixtures("Model", "resnet18_w16.safetensors"));
        var report = WeightLoader.Load(detector, TestPaths.Fixtures("Model", "gfl_tiny_neck_head.safetensors"), strict: false);
        // The file holds neck + head under mmdetection's names: all of them load, only the backbone is "missing".
        Assert.Empty(report.Unexpected);
        Assert.Empty(report.ShapeMismatched);
        Assert.NotEmpty(report.Missing);
        Assert.All(report.Missing, name => Assert.StartsWith("backbone.", name));
        Assert.Equal(detector.state_dict().Keys.Count(k => !k.StartsWith("backbone.", StringComparison.Ordinal)),
            report.Loaded.Count);

        using var io = Safetensors.Read(TestPaths.Fixtures("Model", "gfl_tiny_io.safetensors"));
        detector.eval();
        using var _ = no_grad();
        var outputs = detector.forward(io.Tensors["input"]);
        for (int level = 0; level < 5; level++)
        {
            ResNetTests.AssertClose(io.Tensors[$"cls_score.{level}"], outputs.ClassScores[level]);
            ResNetTests.AssertClose(io.Tensors[$"bbox_pred.{level}"], outputs.BoxPredictions[level]);
        }
    }
}
