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
    public void Run_WithZeroIterations_ThrowsConfigError()
    {
        Assert.Throws<GflConfigException>(() => ModelBenchmark.Run(torch.CPU, depth: 18, height: 64, width: 64, batch: 1, iterations: 0));
    }
}
