using GflTrainer.Model;
using TorchSharp;
using Xunit;
using GflTrainer.Benchmarks;

namespace GflTrainer.Tests.Benchmarks;

public class ModelBenchmarkTests
{
    [Fact]
    [Trait("Category", "Slow")]
    public void Run_OnCpu_ReportsPositiveTimingsPerImage()
    {
        var result = ModelBenchmark.Run(torch.CPU, depth: 18, height: 64, width: 64, batch: 1, iterations: 1);
        Assert.True(result.ForwardMsPerImage > 0);
        Assert.True(result.ForwardBackwardMsPerImage > 0);
        Assert.Equal(18, result.Depth);
    }

    [Fact]
    public void ChannelsLast_RunsAndIsReported()
    {
        var result = ModelBenchmark.Run(torch.CPU, depth: 18, height: 64, width: 64, batch: 1, iterations: 1, channelsLast: true);
        Assert.True(result.ForwardBackwardMsPerImage > 0);
        Assert.Equal(true, ModelBenchmark.Report(result).Rows.Single(r => r.Key == "channels_last").Value);
    }

    /// <summary>The layout trick the benchmark uses (NHWC memory under the NCHW shape) leaves the detector's outputs
    /// as they are up to the float rounding of other conv kernels: the groundwork for training in channels_last.</summary>
    [Fact]
    public void ChannelsLast_Weights_And_Input_Give_The_Same_Outputs()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(0);
        using var detector = GflDetector.Create(18);
        detector.eval();
        var x = torch.randn(1, 3, 96, 128);
        var reference = detector.forward(x);
        GflTrainer.Runtime.ChannelsLast.Apply(detector);
        var xl = GflTrainer.Runtime.ChannelsLast.Of(x);
        Assert.Equal(new long[] { 3 * 96 * 128, 1, 128 * 3, 3 }, xl.stride());
        var outputs = detector.forward(xl);
        for (int l = 0; l < reference.ClassScores.Count; l++)
        {
            Assert.True(torch.allclose(reference.ClassScores[l], outputs.ClassScores[l].contiguous(), 1e-4, 1e-4), $"cls P{l + 3}");
            Assert.True(torch.allclose(reference.BoxPredictions[l], outputs.BoxPredictions[l].contiguous(), 1e-4, 1e-4), $"box P{l + 3}");
        }
    }

    [Fact]
    public void Run_WithZeroIterations_ThrowsConfigError()
    {
        Assert.Throws<GflConfigException>(() => ModelBenchmark.Run(torch.CPU, depth: 18, height: 64, width: 64, batch: 1, iterations: 0));
    }
}
