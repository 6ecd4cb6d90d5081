using GflTrainer.Checkpoints;
using GflTrainer.Model;
using GflTrainer.Tests.Model;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Checkpoints;

public sealed class WeightLoaderTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("gfl-weights-").FullName;
    private static string Resnet18W16 => TestPaths.Fixtures("Model", "resnet18_w16.safetensors");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static GflDetector SmallDetector(int width = 16) =>
        GflDetector.Create(depth: 18, numClasses: 3, fpnChannels: 32, stackedConvs: 1, backboneBaseChannels: width);

    [Fact]
    public void LoadTorchvisionBackbone_MapsToBackbonePrefixAndIgnoresClassifier()
    {
        using var detector = SmallDetector();
        var report = WeightLoader.LoadTorchvisionBackbone(detector, Resnet18W16);
        Assert.True(report.IsExact);
        Assert.Equal(new[] { "fc.bias", "fc.weight" }, report.Ignored);
        Assert.All(report.Loaded, n => Assert.StartsWith("backbone.", n));
        Assert.Equal(detector.state_dict().Keys.Count(k => k.StartsWith("backbone.")), report.Loaded.Count);
        using var file = Safetensors.Read(Resnet18W16);
        Assert.True(detector.state_dict()["backbone.layer3.1.bn2.running_var"].IsIdenticalTo(file.Tensors["layer3.1.bn2.running_var"]));
    }

    [Fact]
    public void Load_CopiesInPlace_SoAnExistingOptimizerKeepsWorking()
    {
        using var scope = NewDisposeScope();
        using var detector = SmallDetector();
        var before = detector.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        using var sgd = optim.SGD(detector.parameters().Where(p => p.requires_grad).ToList(), 0.01, momentum: 0.9);
        WeightLoader.LoadTorchvisionBackbone(detector, Resnet18W16);
        foreach (var (name, parameter) in detector.named_parameters())
            Assert.Same(before[name], parameter);
        using var file = Safetensors.Read(Resnet18W16);
        Assert.True(before["backbone.conv1.weight"].IsIdenticalTo(file.Tensors["conv1.weight"]));
        detector.train();
        sgd.zero_grad();
        detector.forward(randn(1, 3, 64, 64)).ClassScores[0].sum().backward();
        sgd.step(); // would throw KeyNotFoundException had the Parameters been replaced
    }

    [Fact]
    public void Load_Strict_WithWrongWidth_ThrowsConfigErrorNamingMismatchedKeys()
    {
        using var detector = SmallDetector(width: 8);
        var e = Assert.Throws<GflConfigException>(() => WeightLoader.LoadTorchvisionBackbone(detector, Resnet18W16));
        Assert.Contains("backbone.conv1.weight: file [16, 3, 7, 7] vs module [8, 3, 7, 7]", e.Message);
        Assert.Contains("shape mismatch", e.Message);
    }

    [Fact]
    public void Load_Strict_ReportsMissingAndUnexpectedKeysByName_AndCopiesNothing()
    {
        using var scope = NewDisposeScope();
        var path = Path.Combine(_dir, "edited.safetensors");
        using (var file = Safetensors.Read(Resnet18W16))
        {
            var edited = file.Tensors.Where(kv => kv.Key != "layer2.1.bn2.running_mean")
                .ToDictionary(kv => kv.Key, kv => kv.Value);
            edited["layer9.extra.weight"] = ones(2);
            Safetensors.Write(path, edited);
        }
        using var detector = SmallDetector();
        var conv1Before = detector.state_dict()["backbone.conv1.weight"].clone();
        var e = Assert.Throws<GflConfigException>(() => WeightLoader.LoadTorchvisionBackbone(detector, path));
        Assert.Contains("missing 1: backbone.layer2.1.bn2.running_mean", e.Message);
        Assert.Contains("unexpected 1: layer9.extra.weight", e.Message);
        Assert.True(detector.state_dict()["backbone.conv1.weight"].IsIdenticalTo(conv1Before));

        var report = WeightLoader.Load(detector, path, WeightNameMapping.TorchvisionBackbone, strict: false,
            WeightLoader.TorchvisionClassifierPrefixes);
        Assert.Equal(new[] { "backbone.layer2.1.bn2.running_mean" }, report.Missing);
        Assert.Equal(new[] { "layer9.extra.weight" }, report.Unexpected);
        Assert.False(detector.state_dict()["backbone.conv1.weight"].IsIdenticalTo(conv1Before));
    }

    [Fact]
    public void SaveStateDict_ThenLoadIdentity_RestoresEveryTensorOfTheDetector()
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(3);
        using var source = SmallDetector();
        torch.manual_seed(4);
        using var target = SmallDetector();
        var path = Path.Combine(_dir, "detector.safetensors");
        Safetensors.Write(path, source.state_dict());
        var report = WeightLoader.Load(target, path);
        Assert.True(report.IsExact);
        var expected = source.state_dict();
        foreach (var (name, value) in target.state_dict())
            Assert.True(value.IsIdenticalTo(expected[name]), name);
    }
}
