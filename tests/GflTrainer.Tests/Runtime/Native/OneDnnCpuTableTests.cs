using System.Runtime.InteropServices;
using Xunit;
using GflTrainer.Runtime.Native;

namespace GflTrainer.Tests.Runtime.Native;

/// <summary>gfl's view into libtorch's oneDNN: the symbol lookup and the CPU object's layout, checked on whatever
/// machine runs the tests.</summary>
public class OneDnnCpuTableTests
{
    [Fact]
    public void ElfLookup_AgreesWithTheDynamicLoader()
    {
        if (!OperatingSystem.IsLinux()) return;
        var (path, loadBase) = LibtorchLibrary.Mapping();
        Assert.NotNull(path);
        const string name = "_ZN2at13globalContextEv";
        var found = ElfSymbols.Find(path!, [name, "no_such_symbol_in_libtorch"]);
        Assert.Single(found);
        var viaLoader = NativeLibrary.GetExport(NativeLibrary.Load(path!), name);
        Assert.Equal(viaLoader, loadBase + (nint)found[name]);
    }

    /// <summary>The table in libtorch's memory is what our replica of Xbyak computes from this CPU (or, when this
    /// process applied the workaround or simulates another machine, what was written): the layout holds here.</summary>
    [Fact]
    public void TableInLibtorch_IsWhatXbyakComputesFromThisCpu()
    {
        if (!OperatingSystem.IsLinux() || !HardwareCpuid.IsSupported) return;
        var report = TorchRuntime.Cpu;
        var expected = report.Written ?? (Environment.GetEnvironmentVariable(OneDnnCacheWorkaround.RecordingVariable) is { Length: > 0 } r
            ? XbyakCacheTable.Compute(CpuidRecording.Load(r)) : XbyakCacheTable.Compute(HardwareCpuid.Instance));
        var table = OneDnnCpuTable.TryLocate(expected, out var why);
        Assert.True(table is not null, why);
        Assert.True(table!.Read().SameAs(expected));
        Assert.False(XbyakCacheTable.Compute(HardwareCpuid.Instance).ImplausibleLevels().Any() && report.Action == CpuWorkaround.None,
            "this machine's caches are implausible and nothing was done about it");
    }

    [Fact]
    public void UnknownLayout_IsNotTouched()
    {
        if (!OperatingSystem.IsLinux() || !HardwareCpuid.IsSupported) return;
        var wrong = new CacheTable(2, [12345, 67890, 0, 0, 0, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
        Assert.Null(OneDnnCpuTable.TryLocate(wrong, out var why));
        Assert.Contains("unknown layout", why);
    }
}
