using GflTrainer.Benchmarks;
using GflTrainer.Config;
using GflTrainer.Data;
using GflTrainer.Tests.Data;
using Xunit;

namespace GflTrainer.Tests.Benchmarks;

/// <summary><c>gfl bench data</c>, with and without the training targets built by the workers.</summary>
public sealed class DataBenchmarkTests : IDisposable
{
    readonly TempDir _dir = new();

    public DataBenchmarkTests() =>
        SyntheticShapes.Write(_dir.Path, new SyntheticShapesOptions { Seed = 2, TrainImages = 8, ValImages = 0, ImageSize = 64, MinSide = 8, MaxSide = 40 });

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData(null, "none")]
    [InlineData(HeadType.Retinanet, "retinanet")]
    public void Reports_the_pipeline_with_the_targets_it_built(HeadType? head, string name)
    {
        var r = DataBenchmark.Run(Path.Combine(_dir.Path, "annotations", "instances_train.json"), Path.Combine(_dir.Path, "images"),
            workers: 2, count: 4, targetsHead: head);
        Assert.Equal(name, r.Targets);
        Assert.True(r.Images >= 4);
        // Batches of at most 2 images: when a head was asked for, every timed batch carries its targets.
        if (head is null) Assert.Equal(0, r.BatchesWithTargets);
        else Assert.InRange(r.BatchesWithTargets, (r.Images + 1) / 2, r.Images);
        Assert.True(r.PipelineImagesPerSecond > 0);
        var rows = DataBenchmark.Report(r).Rows.ToDictionary(x => x.Key, x => x.Value);
        Assert.Equal(name, rows["targets"]);
    }
}
