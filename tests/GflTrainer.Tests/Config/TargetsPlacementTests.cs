using GflTrainer.Config;
using Xunit;

namespace GflTrainer.Tests.Config;

/// <summary><c>runtime.targets</c>: where a run builds its training targets.</summary>
public sealed class TargetsPlacementTests
{
    [Theory]
    [InlineData(TargetsPlacement.Auto, true, 1, true)]      // GFL, ATSS on CUDA: the loader
    [InlineData(TargetsPlacement.Auto, true, 9, false)]     // RetinaNet on CUDA: 9 anchors per cell cost the workers too much
    [InlineData(TargetsPlacement.Auto, false, 1, false)]    // the CPU: the workers would take the step's cores
    [InlineData(TargetsPlacement.Loader, false, 9, true)]
    [InlineData(TargetsPlacement.Step, true, 1, false)]
    public void Auto_builds_in_the_loader_only_on_CUDA_for_one_anchor_per_location(TargetsPlacement placement, bool cuda, int anchors, bool loader) =>
        Assert.Equal(loader, new RuntimeConfig { Targets = placement }.TargetsInLoader(cuda, anchors));

    [Fact]
    public void The_key_reads_from_yaml_and_rejects_unknown_values()
    {
        var cfg = ConfigLoader.LoadYaml("runtime:\n  targets: loader\n", "t.yaml");
        Assert.Equal(TargetsPlacement.Loader, cfg.Runtime.Targets);
        var e = Assert.ThrowsAny<Exception>(() => ConfigLoader.LoadYaml("runtime:\n  targets: gpu\n", "t.yaml"));
        Assert.Contains("runtime.targets", e.Message);
    }
}
