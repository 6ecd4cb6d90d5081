using GflTrainer.Benchmarks;
using TorchSharp;
using Xunit;

namespace GflTrainer.Tests.Benchmarks;

/// <summary><c>gfl bench infer</c> with each engine: gfl's model, and the same seeded model exported and run in ONNX Runtime.</summary>
public class InferenceBenchmarkTests
{
    [Theory]
    [InlineData("torchsharp")]
    [InlineData("onnxruntime")]
    public void Infer_WithEachEngine_TimesEveryIteration_AndNamesTheEngine(string engine)
    {
        var r = TrainStepBenchmark.Inference(torch.CPU, depth: 18, batch: 2, height: 96, width: 128, iterations: 2, warmup: 1, engine: engine);
        Assert.Equal(2, r.SamplesMs.Count);
        Assert.All(r.SamplesMs, ms => Assert.True(ms > 0));
        var rows = TrainStepBenchmark.Report(r).Rows.ToDictionary(x => x.Key, x => x.Value);
        Assert.Equal(engine, rows["engine"]);
        Assert.False(Directory.EnumerateFiles(Path.GetTempPath(), $"gfl-bench-{Environment.ProcessId}.onnx*").Any(), "the temporary model was left behind");
    }

    [Fact]
    public void Infer_WithAnUnknownEngine_IsAConfigError()
    {
        var e = Assert.Throws<GflConfigException>(() => TrainStepBenchmark.Inference(torch.CPU, depth: 18, height: 64, width: 64, iterations: 1, warmup: 0, engine: "tensorrt"));
        Assert.Contains("--engine tensorrt", e.Message);
    }

    [Fact]
    public void Infer_ChannelsLast_IsReported_AndOnlyForTorchSharp()
    {
        var r = TrainStepBenchmark.Inference(torch.CPU, depth: 18, batch: 1, height: 64, width: 64, iterations: 1, warmup: 0, channelsLast: true);
        Assert.Equal(true, TrainStepBenchmark.Report(r).Rows.Single(x => x.Key == "channels_last").Value);
        var e = Assert.Throws<GflConfigException>(() => TrainStepBenchmark.Inference(torch.CPU, depth: 18, height: 64, width: 64,
            iterations: 1, warmup: 0, engine: "onnxruntime", channelsLast: true));
        Assert.Equal("--channels-last", e.Key);
    }
}
