using System.Diagnostics;
using Xunit;
using GflTrainer.Runtime.Native;
using GflTrainer.Tests;

namespace GflTrainer.Cli.Tests;

/// <summary>
/// <c>gfl doctor</c> in a fresh process per case (oneDNN plans, and caches, its primitives with the cache table it
/// had at the time, so a simulated machine needs a process of its own). GFL_CPUID_RECORDING makes oneDNN see the
/// cache table of the recorded Zen 5 VM, on whatever machine runs the tests; GFL_CPU_WORKAROUND forces each branch.
/// </summary>
public class CpuWorkaroundProcessTests
{
    private static readonly string Zen5 = TestPaths.Fixtures("cpuid", "amd-zen5-2vcpu-vm-hidden-caches.json");

    private static (int ExitCode, string Output) Doctor(string? recording, string mode, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "gfl.dll"), "doctor" }.Concat(args)) psi.ArgumentList.Add(a);
        psi.Environment.Remove(OneDnnCacheWorkaround.RecordingVariable);
        if (recording is not null) psi.Environment[OneDnnCacheWorkaround.RecordingVariable] = recording;
        psi.Environment[OneDnnCacheWorkaround.ModeVariable] = mode;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(300_000), "gfl doctor did not finish");
        return (p.ExitCode, stdout.Result + stderr.Result);
    }

    /// <summary>The simulation has teeth: without the workaround, the Zen 5 VM's cache table makes oneDNN's
    /// gradients wrong here too (this is what every other test in this class would catch).</summary>
    [Fact]
    public void SimulatedZen5_WithoutWorkaround_ComputesWrongGradients()
    {
        var (code, output) = Doctor(Zen5, "none", "--config", Path.Combine(TestPaths.RepoRoot(), "configs", "quickstart.yaml"));
        Assert.True(code == 1, output);
        Assert.Contains("conv gradients WRONG", output);
        Assert.Contains("oneDNN plans for [L1 1 B, L2 1 B, L3 1 B]", output);
    }

    [Fact]
    public void SimulatedZen5_Auto_GivesOneDnnTheLegacyLeavesTable_AndR50TrainsCorrectly()
    {
        var (code, output) = Doctor(Zen5, "auto", "--r50");
        Assert.True(code == 0, output);
        Assert.Contains("workaround     cache-table", output);
        Assert.Contains("L1 48 KiB, L2 1 MiB, L3 32 MiB shared by 2] from CPUID 0x80000005/0x80000006", output);
        Assert.Contains("conv gradients ok: NCHW", output);
        Assert.Contains("conv gradients ok: channels_last", output);
        Assert.Contains("R50 backward   ok (NCHW", output);
        Assert.Contains("R50 backward   ok (channels_last", output);
    }

    [Fact]
    public void SimulatedZen5_NoOneDnn_IsCorrectToo()
    {
        var (code, output) = Doctor(Zen5, "no-onednn", "--r50");
        Assert.True(code == 0, output);
        Assert.Contains("oneDNN convs   off", output);
        Assert.Contains("R50 backward   ok", output);
    }

    /// <summary>The table rewrite runs on every machine, not only where the caches are hidden.</summary>
    [Fact]
    public void ThisMachine_ForcedCacheTable_IsCorrect()
    {
        if (!HardwareCpuid.IsSupported) return;
        var (code, output) = Doctor(null, "cache-table", "--r50");
        Assert.True(code == 0, output);
        Assert.Contains("workaround     cache-table", output);
        Assert.Contains("R50 backward   ok", output);
    }
}
