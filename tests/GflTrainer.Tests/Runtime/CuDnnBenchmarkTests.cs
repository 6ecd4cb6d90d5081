using GflTrainer.Runtime;
using Xunit;

namespace GflTrainer.Tests.Runtime;

/// <summary>runtime.cudnn_benchmark reaches libtorch's process-wide switch (read back through libtorch's own getter;
/// the CPU build keeps the flag too, cuDNN reads it on a GPU).</summary>
public sealed class CuDnnBenchmarkTests
{
    [Fact]
    public void Apply_sets_libtorchs_switch_both_ways_and_refuses_deterministic_mode()
    {
        try
        {
            CuDnnBenchmark.Apply(true, deterministic: false, Serilog.Core.Logger.None);
            Assert.True(CuDnnBenchmark.Enabled);
            CuDnnBenchmark.Apply(false, deterministic: false, Serilog.Core.Logger.None);
            Assert.False(CuDnnBenchmark.Enabled);
            var e = Assert.Throws<GflConfigException>(() => CuDnnBenchmark.Apply(true, deterministic: true, Serilog.Core.Logger.None));
            Assert.Equal("runtime.cudnn_benchmark", e.Key);
            Assert.False(CuDnnBenchmark.Enabled);
        }
        finally { CuDnnBenchmark.Enabled = false; }
    }
}
