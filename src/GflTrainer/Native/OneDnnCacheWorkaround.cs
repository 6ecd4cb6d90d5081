using Serilog;

namespace GflTrainer.Native;

/// <summary>What <see cref="OneDnnCacheWorkaround.Apply"/> found and did, for the log line and <c>gfl info/doctor</c>.</summary>
public sealed record CpuWorkaroundReport(
    string Mode, string Cpu, CacheTable FromCpuid, bool Implausible, string Action, CacheTable? Written, string Detail)
{
    /// <summary>One line naming the cause and the workaround (empty when nothing was wrong or done).</summary>
    public string Summary => Action switch
    {
        "cache-table" when Implausible =>
            $"{Cpu}: the hypervisor hides the cache topology (its CPUID cache leaves read zero), so libtorch's oneDNN would "
            + $"plan for [{FromCpuid}] (wrong convolution gradients, SIGFPE in backward); gfl gave oneDNN [{Written}] "
            + $"from {Detail}. Set {OneDnnCacheWorkaround.ModeVariable}=no-onednn to use libtorch's own convolutions instead.",
        "cache-table" => $"{OneDnnCacheWorkaround.ModeVariable}=cache-table: oneDNN's cache table set to [{Written}] from {Detail}",
        "no-onednn" => (Implausible
                ? $"{Cpu}: the hypervisor hides the cache topology, so libtorch's oneDNN would plan for [{FromCpuid}]; "
                : $"{OneDnnCacheWorkaround.ModeVariable}=no-onednn: ")
            + $"oneDNN convolutions are off (libtorch's own CPU convolutions, slower){(Detail.Length > 0 ? " (" + Detail + ")" : "")}",
        "none" when Implausible =>
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

    public static CpuWorkaroundReport Apply(string? mode = null, string? recordingPath = null)
    {
        mode = (mode ?? Environment.GetEnvironmentVariable(ModeVariable) ?? "auto").Trim().ToLowerInvariant();
        if (mode is not ("auto" or "cache-table" or "no-onednn" or "none"))
            throw new GflConfigException($"{ModeVariable}={mode}: expected auto, cache-table, no-onednn or none");
        recordingPath ??= Environment.GetEnvironmentVariable(RecordingVariable);
        if (!HardwareCpuid.IsSupported)
            return new CpuWorkaroundReport(mode, "not x86-64", new CacheTable(0, new uint[10], new uint[10]), false, "none", null, "");

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
        string action = mode switch
        {
            "auto" => implausible ? "cache-table" : "none",
            var m => m,
        };

        if (action == "cache-table")
        {
            // A simulation has located the table already; otherwise confirm the layout against the real processor.
            table ??= OneDnnCpuTable.TryLocate(XbyakCacheTable.Compute(HardwareCpuid.Instance), out locateProblem);
            if (table is not null)
            {
                var estimate = CacheTopology.Estimated(cpu, cpu is CpuidRecording ? null : CacheTopology.SysfsCacheDir);
                table.Write(estimate.Table);
                return Logged(new CpuWorkaroundReport(mode, name, fromCpuid, implausible, "cache-table", estimate.Table, estimate.Source));
            }
            action = "no-onednn";
        }
        if (action == "no-onednn")
        {
            DisableOneDnn();
            return Logged(new CpuWorkaroundReport(mode, name, fromCpuid, implausible, "no-onednn", null,
                locateProblem.Length > 0 ? $"oneDNN's cache table could not be set: {locateProblem}" : ""));
        }
        return Logged(new CpuWorkaroundReport(mode, name, fromCpuid, implausible, "none", null, ""));
    }

    private static CpuWorkaroundReport Logged(CpuWorkaroundReport report)
    {
        if (report.Summary.Length == 0) Serilog.Log.Debug("CPU caches as oneDNN sees them: {Table}", report.FromCpuid);
        else if (report.Action == "none") Serilog.Log.Warning("{Summary}", report.Summary);
        else Serilog.Log.Information("{Summary}", report.Summary);
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
