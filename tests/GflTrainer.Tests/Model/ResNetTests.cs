using System.Text.Json;
using GflTrainer.Checkpoints;
using GflTrainer.Model;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Model;

public class ResNetTests
{
    /// <summary>Narrow torchvision ResNets (scripts/make_model_fixtures.py): same code path, width w instead of 64.</summary>
    [Theory]
    [InlineData(18, 16)]
    [InlineData(50, 8)]
    public void Forward_WithTorchvisionWeights_MatchesTorchvisionFeaturesInEvalMode(int depth, int width)
    {
        using var scope = NewDisposeScope();
        using var resnet = new ResNet(depth, frozenStages: 1, normEval: true, baseChannels: width);
        var report = WeightLoader.Load(resnet, TestPaths.Fixtures("Model", $"resnet{depth}_w{width}.safetensors"),
            strict: true, ignoredSourcePrefixes: WeightLoader.TorchvisionClassifierPrefixes);
        Assert.Equal(new[] { "fc.bias", "fc.weight" }, report.Ignored);
        using var io = Safetensors.Read(TestPaths.Fixtures("Model", $"resnet{depth}_w{width}_io.safetensors"));
        resnet.eval();
        using var _ = no_grad();
        var features = resnet.forward(io.Tensors["input"]);
        AssertClose(io.Tensors["c3"], features[0]);
        AssertClose(io.Tensors["c4"], features[1]);
        AssertClose(io.Tensors["c5"], features[2]);
    }

    /// <summary>mmdetection's from-scratch init (ResNet(zero_init_residual=True)): the last BN of every block starts
    /// at weight 0 and bias 0, every other BN at 1 and 0; with the option off, all BNs start at 1.</summary>
    [Theory]
    [InlineData(18, true)]
    [InlineData(50, true)]
    [InlineData(18, false)]
    public void FromScratch_ZeroInitResidual_ZeroesEachBlocksLastNorm(int depth, bool zeroInit)
    {
        using var scope = NewDisposeScope();
        using var resnet = new ResNet(depth, frozenStages: -1, normEval: false, baseChannels: 8, zeroInitResidual: zeroInit);
        string last = depth < 50 ? "bn2" : "bn3";
        int zeroed = 0;
        foreach (var (name, p) in resnet.named_parameters())
        {
            if (!name.Contains(".bn", StringComparison.Ordinal) && !name.StartsWith("bn1", StringComparison.Ordinal)) continue;
            bool residual = zeroInit && name.EndsWith($".{last}.weight", StringComparison.Ordinal) || zeroInit && name.EndsWith($".{last}.bias", StringComparison.Ordinal);
            double expected = residual ? 0.0 : name.EndsWith(".weight", StringComparison.Ordinal) ? 1.0 : 0.0;
            Assert.True(p.eq(expected).all().item<bool>(), $"{name} should start at {expected}");
            if (residual && name.EndsWith(".weight", StringComparison.Ordinal)) zeroed++;
        }
        Assert.Equal(zeroInit ? (depth < 50 ? 8 : 16) : 0, zeroed);

        // Each block then starts as relu(identity or downsample): a stride-1 block passes a non-negative input through.
        resnet.eval();
        using var _ = no_grad();
        var block = (nn.Module<Tensor, Tensor>)resnet.named_modules().First(m => m.name == "layer1.1").module;
        var x = rand(1, depth < 50 ? 8 : 32, 6, 6);
        Assert.Equal(zeroInit, block.forward(x).allclose(x));
    }

    [Fact]
    public void Forward_AfterTrainWithNormEval_StillMatchesTorchvisionEvalFeatures()
    {
        using var scope = NewDisposeScope();
        using var resnet = new ResNet(18, frozenStages: 1, normEval: true, baseChannels: 16);
        WeightLoader.Load(resnet, TestPaths.Fixtures("Model", "resnet18_w16.safetensors"), strict: true,
            ignoredSourcePrefixes: WeightLoader.TorchvisionClassifierPrefixes);
        using var io = Safetensors.Read(TestPaths.Fixtures("Model", "resnet18_w16_io.safetensors"));
        resnet.train();
        using var _ = no_grad();
        AssertClose(io.Tensors["c5"], resnet.forward(io.Tensors["input"])[2]);
    }

    [Theory]
    [InlineData(18)]
    [InlineData(50)]
    public void StateDict_NamesAndShapes_EqualTorchvisionWithoutClassifier(int depth)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(TestPaths.Fixtures("Model", "torchvision_resnet_shapes.json")));
        var expected = doc.RootElement.GetProperty($"resnet{depth}").EnumerateObject()
            .Where(p => !p.Name.StartsWith("fc.", StringComparison.Ordinal))
            .ToDictionary(p => p.Name, p => string.Join(",", p.Value.EnumerateArray().Select(e => e.GetInt64())));
        using var resnet = new ResNet(depth);
        var actual = resnet.state_dict().ToDictionary(kv => kv.Key, kv => string.Join(",", kv.Value.shape));
        Assert.Equal(expected.OrderBy(kv => kv.Key), actual.OrderBy(kv => kv.Key));
    }

    [Fact]
    public void Train_WithFrozenStagesOne_KeepsStemAndLayer1FrozenAndInEvalMode()
    {
        using var resnet = new ResNet(18, frozenStages: 1, normEval: false, baseChannels: 8);
        resnet.train();
        var parameters = resnet.named_parameters().ToList();
        Assert.All(parameters.Where(p => IsStemOrLayer1(p.name)), p => Assert.False(p.parameter.requires_grad, p.name));
        Assert.All(parameters.Where(p => !IsStemOrLayer1(p.name)), p => Assert.True(p.parameter.requires_grad, p.name));
        var modules = resnet.named_modules().ToDictionary(m => m.name, m => m.module);
        Assert.False(modules["bn1"].training);
        Assert.False(modules["layer1.0.bn1"].training);
        Assert.True(modules["layer2.0.bn1"].training);
    }

    [Fact]
    public void Constructor_WithUnsupportedDepth_Throws()
    {
        // A programming error here: the config validator refuses model.backbone.depth 42 with its file and line.
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new ResNet(depth: 42));
        Assert.Contains("42", e.Message);
    }

    internal static bool IsStemOrLayer1(string name) =>
        name.StartsWith("conv1.", StringComparison.Ordinal) || name.StartsWith("bn1.", StringComparison.Ordinal)
        || name.StartsWith("layer1.", StringComparison.Ordinal);

    /// <summary>Within 1e-4 relative to the reference's largest magnitude (float32 conv sums in a different order).</summary>
    internal static void AssertClose(Tensor expected, Tensor actual)
    {
        Assert.Equal(expected.shape, actual.shape);
        double scale = Math.Max(expected.abs().max().item<float>(), 1e-6);
        double error = (expected - actual).abs().max().item<float>();
        Assert.True(error <= 1e-4 * scale, $"max abs error {error:G4} exceeds 1e-4 x {scale:G4}");
    }
}
