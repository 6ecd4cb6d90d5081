using Serilog;

namespace GflTrainer.Runtime.Native;

/// <summary>The values of <see cref="OneDnnCacheWorkaround.ModeVariable"/>; every one but Auto is also what was done.</summary>
public enum CpuWorkaround
{
    /// <summary>Rewrite oneDNN's cache table only when it is implausible (default).</summary>
    Auto,
    /// <summary>Give oneDNN a real cache table (legacy CPUID leaves, sysfs, or its own defaults).</summary>
    CacheTable,
    /// <summary>Turn oneDNN's CPU convolutions off: libtorch's own kernels.</summary>
    NoOneDnn,
    /// <summary>Leave oneDNN as it is.</summary>
    None,
}

/// <summary>What <see cref="OneDnnCacheWorkaround.Apply"/> found and did, for the log line and <c>gfl info/doctor</c>.</summary>
public sealed record CpuWorkaroundReport(
    CpuWorkaround Mode, string Cpu, CacheTable FromCpuid, bool Implausible, CpuWorkaround Action, CacheTable? Written, string Detail)
{
    /// <summary>One line naming the cause and the workaround (empty when nothing was wrong or done).</summary>
    public string Summary => Action switch
    {
        CpuWorkaround.CacheTable when Implausible =>
            $"{Cpu}: the hypervisor hides the cache topology (its CPUID cache leaves read zero), so libtorch's oneDNN would "
            + $"plan for [{FromCpuid}] (wrong convolution gradients, SIGFPE in backward); gfl gave oneDNN [{Written}] "
            + $"from {Detail}. Set {OneDnnCacheWorkaround.ModeVariable}=no-onednn to use libtorch's own convolutions instead.",
        CpuWorkaround.CacheTable => $"{OneDnnCacheWorkaround.ModeVariable}=cache-table: oneDNN's cache table set to [{Written}] from {Detail}",
        CpuWorkaround.NoOneDnn => (Implausible
                ? $"{Cpu}: the hypervisor hides the cache topology, so libtorch's oneDNN would plan for [{FromCpuid}]; "
                : $"{OneDnnCacheWorkaround.ModeVariable}=no-onednn: ")
            + $"oneDNN convolutions are off (libtorch's own CPU convolutions, slower){(Detail.Length > 0 ? " (" + Detail + ")" : "")}",
        CpuWorkaround.None when Implausible =>
            $"{Cpu}: oneDNN plans for [{FromCpuid}] and {OneDnnCacheWorkaround.ModeVariable}=none leaves it: CPU training may "
            + "compute wrong gradients or crash (SIGFPE)",
        _ => "",
    };
}

/// <summary>
/// Keeps libtorch's oneDNN away from a cache table no processor has. Cause (measured; oneDNN 3.7.1 in libtorch 2.10):
/// on AMD, Xbyak reads cache sizes from CPUID leaf 0x8000001D without checking TOPOEXT, and VMs that hide the cache
/// topology answer zeros, so every level is 1 byte (<see cref="XbyakCacheTable"/>). Then (a) the reorders that
/// bring weights into oneDNN's blocked layout take their L1 cache-blocking path (jit_uni_reorder.cpp: the inner block
/// is larger than 3/4 of L1) and leave the padding lanes of a channel block unwritten, so the backward-data kernel of
/// every convolution whose output channels are not a multiple of 8 (AVX2) or 16 (AVX-512) multiplies uninitialised
/// memory into grad_input: wrong values, NaN when the heap held NaN (reproduced on any x86-64 machine by writing the
/// 1-byte table: any L1 below 128 bytes); (b) brgemm convolution backward divides by zero (SIGFPE) in
/// brg_blocking_t::est_eff_1x1 for R50's strided 1x1 convolutions. Upstream: the same exit 136 on an AMD without
/// that leaf (uxlfoundation/oneDNN#2716), and the same reorder corruption from a zero L1 size on AArch64 (#5313,
/// fixed there by falling back to the guessed sizes, PR #5314; x64 still trusts Xbyak). The cure is to give oneDNN a real table (legacy
/// CPUID leaves, sysfs, or oneDNN's own defaults) before it plans its first primitive: the normal fast kernels, with
/// correct gradients. If the table cannot be found or trusted, oneDNN convolutions are switched off instead.
/// Switch: <see cref="ModeVariable"/> = auto (default) | cache-table (rewrite even a plausible table, to exercise the
/// path) | no-onednn | none. <see cref="RecordingVariable"/> = a CPUID recording makes this process's oneDNN see the
/// table Xbyak computes from it (simulating that machine, e.g. the Zen 5 VM) before the workaround runs.
/// </summary>
public static class OneDnnCacheWorkaround
{
    public const string ModeVariable = "GFL_CPU_WORKAROUND";
    public const string RecordingVariable = "GFL_CPUID_RECORDING";

    /// <summary>The switch's spelling of a value: auto, cache-table, no-onednn, none.</summary>
    public static string Name(CpuWorkaround value) => value switch
    {
        CpuWorkaround.Auto => "auto",
        CpuWorkaround.CacheTable => "cache-table",
        CpuWorkaround.NoOneDnn => "no-onednn",
        _ => "none",
    };

    public static CpuWorkaround Parse(string? value)
    {
        var text = (value ?? "auto").Trim().ToLowerInvariant();
        foreach (var v in Enum.GetValues<CpuWorkaround>())
            if (Name(v) == text) return v;
        throw new GflConfigException($"{ModeVariable}={value}: expected auto, cache-table, no-onednn or none");
    }

    public static CpuWorkaroundReport Apply(CpuWorkaround? mode = null, string? recordingPath = null, ILogger? log = null)
    {
        var chosen = mode ?? Parse(Environment.GetEnvironmentVariable(ModeVariable));
        recordingPath ??= Environment.GetEnvironmentVariable(RecordingVariable);
        if (!HardwareCpuid.IsSupported)
            return new CpuWorkaroundReport(chosen, "not x86-64", new CacheTable(0, new uint[10], new uint[10]), false,
                CpuWorkaround.None, null, "");

        ICpuid cpu = HardwareCpuid.Instance;
        OneDnnCpuTable? table = null;
        string locateProblem = "";
        if (!string.IsNullOrEmpty(recordingPath))
        {
            var recording = CpuidRecording.Load(recordingPath);
            table = OneDnnCpuTable.TryLocate(XbyakCacheTable.Compute(cpu), out locateProblem)
                ?? throw new GflRuntimeException($"{RecordingVariable}: cannot simulate {recording.Machine}: {locateProblem}");
            table.Write(XbyakCacheTable.Compute(recording));
            cpu = recording;
        }

        var fromCpuid = XbyakCacheTable.Compute(cpu);
        bool implausible = fromCpuid.ImplausibleLevels().Any();
        var (family, model) = CpuIdentity.FamilyModel(cpu);
        string name = (cpu is CpuidRecording r ? $"{r.Machine} (recorded CPUID) " : "") + $"{CpuIdentity.Vendor(cpu)} family {family:x}h model {model:x}h";
        var action = chosen == CpuWorkaround.Auto ? (implausible ? CpuWorkaround.CacheTable : CpuWorkaround.None) : chosen;
        CpuWorkaroundReport Report(CpuWorkaround done, CacheTable? written, string detail) =>
            Logged(new CpuWorkaroundReport(chosen, name, fromCpuid, implausible, done, written, detail), log ?? Serilog.Log.Logger);

        if (action == CpuWorkaround.CacheTable)
        {
            // A simulation has located the table already; otherwise confirm the layout against the real processor.
            table ??= OneDnnCpuTable.TryLocate(XbyakCacheTable.Compute(HardwareCpuid.Instance), out locateProblem);
            if (table is not null)
            {
                var estimate = CacheTopology.Estimated(cpu, cpu is CpuidRecording ? null : CacheTopology.SysfsCacheDir);
                table.Write(estimate.Table);
                return Report(CpuWorkaround.CacheTable, estimate.Table, estimate.Source);
            }
            action = CpuWorkaround.NoOneDnn;
        }
        if (action == CpuWorkaround.NoOneDnn)
        {
            DisableOneDnn();
            return Report(CpuWorkaround.NoOneDnn, null,
                locateProblem.Length > 0 ? $"oneDNN's cache table could not be set: {locateProblem}" : "");
        }
        return Report(CpuWorkaround.None, null, "");
    }

    private static CpuWorkaroundReport Logged(CpuWorkaroundReport report, ILogger log)
    {
        if (report.Summary.Length == 0) log.Debug("CPU caches as oneDNN sees them: {Table}", report.FromCpuid);
        else if (report.Action == CpuWorkaround.None) log.Warning("{Summary}", report.Summary);
        else log.Information("{Summary}", report.Summary);
        return report;
    }

    /// <summary>at::globalContext().setUserEnabledMkldnn(false): torch.backends.mkldnn.enabled = False.</summary>
    public static unsafe void DisableOneDnn()
    {
        var context = (delegate* unmanaged<nint>)LibtorchLibrary.Export("_ZN2at13globalContextEv", "oneDNN switch");
        var setEnabled = (delegate* unmanaged<nint, byte, void>)LibtorchLibrary.Export("_ZN2at7Context20setUserEnabledMkldnnEb", "oneDNN switch");
        setEnabled(context(), 0);
    }

    /// <summary>Whether libtorch currently lets oneDNN run its CPU convolutions (at::Context::userEnabledMkldnn).</summary>
    public static unsafe bool OneDnnEnabled()
    {
        var context = (delegate* unmanaged<nint>)LibtorchLibrary.Export("_ZN2at13globalContextEv", "oneDNN switch");
        var enabled = (delegate* unmanaged<nint, byte>)LibtorchLibrary.Export("_ZNK2at7Context17userEnabledMkldnnEv", "oneDNN switch");
        return enabled(context()) != 0;
    }
}
