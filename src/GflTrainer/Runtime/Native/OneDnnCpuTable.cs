using System.Runtime.InteropServices;

namespace GflTrainer.Runtime.Native;

/// <summary>
/// The cache table of the <c>Xbyak::util::Cpu</c> object that oneDNN inside the loaded libtorch_cpu.so built from
/// CPUID (<c>dnnl::impl::cpu::x64::cpu()</c>'s function-local static), read and, where it is implausible, rewritten
/// before the first oneDNN primitive is created. libtorch 2.10's libtorch_cpu.so keeps its full .symtab, so both
/// the function and the object are found by name; the field offsets are those of oneDNN 3.7.1's xbyak_util.h, and
/// are confirmed before any write by reading back exactly the table that <see cref="XbyakCacheTable"/> computes from
/// this processor's CPUID. Anything unexpected (another libtorch, a stripped library, other numbers) makes
/// <see cref="TryLocate"/> fail with a reason and nothing is written.
/// </summary>
public sealed unsafe class OneDnnCpuTable
{
    private const string CpuFunction = "_ZN4dnnl4impl3cpu3x643cpuEv";
    private const string CpuObject = "_ZZN4dnnl4impl3cpu3x643cpuEvE4cpu_";

    // Xbyak::util::Cpu in oneDNN 3.7.1: Type type_ (2 x uint64), bool x2APIC_supported_, uint32 numCores_[2],
    // uint32 dataCacheSize_[10], uint32 coresSharignDataCache_[10], uint32 dataCacheLevels_.
    private const int NumCoresOffset = 20, SizesOffset = 28, SharingOffset = 68, LevelsOffset = 108, MaxLevels = 10;

    private readonly byte* _cpu;

    private OneDnnCpuTable(byte* cpu, string library)
    {
        _cpu = cpu;
        Library = library;
    }

    /// <summary>The libtorch_cpu.so whose table this is.</summary>
    public string Library { get; }

    public CacheTable Read()
    {
        uint levels = *(uint*)(_cpu + LevelsOffset);
        var sizes = new uint[MaxLevels];
        var sharing = new uint[MaxLevels];
        for (int i = 0; i < MaxLevels; i++)
        {
            sizes[i] = ((uint*)(_cpu + SizesOffset))[i];
            sharing[i] = ((uint*)(_cpu + SharingOffset))[i];
        }
        return new CacheTable(levels, sizes, sharing);
    }

    /// <summary>Replaces the table. Only safe before oneDNN has planned a primitive: plans (and the jitted kernels in
    /// its primitive cache) keep the blocking they were made with.</summary>
    public void Write(CacheTable table)
    {
        if (table.Levels > MaxLevels) throw new ArgumentOutOfRangeException(nameof(table));
        for (int i = 0; i < MaxLevels; i++)
        {
            ((uint*)(_cpu + SizesOffset))[i] = i < table.Levels ? table.Sizes[i] : 0;
            ((uint*)(_cpu + SharingOffset))[i] = i < table.Levels ? Math.Max(1u, table.CoresSharing[i]) : 0;
        }
        *(uint*)(_cpu + LevelsOffset) = table.Levels;
    }

    /// <summary>Finds oneDNN's CPU object in the loaded libtorch_cpu.so and confirms its layout against
    /// <paramref name="expected"/> (what Xbyak computes from the real CPUID). Null with <paramref name="why"/> when
    /// it cannot be trusted. Loads libtorch (through TorchSharp) if it is not loaded yet.</summary>
    public static OneDnnCpuTable? TryLocate(CacheTable expected, out string why)
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64)
        {
            why = "only on Linux x86-64";
            return null;
        }
        var (path, loadBase) = LibtorchLibrary.Mapping();
        if (path is null)
        {
            why = "libtorch_cpu.so is not mapped in this process";
            return null;
        }
        Dictionary<string, ulong> symbols;
        try { symbols = ElfSymbols.Find(path, [CpuFunction, CpuObject]); }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
        {
            why = $"{path}: {e.Message}";
            return null;
        }
        if (!symbols.TryGetValue(CpuFunction, out var fn) || !symbols.TryGetValue(CpuObject, out var obj))
        {
            why = $"{path} has no symbols for oneDNN's CPU object (stripped, or not oneDNN 3.x)";
            return null;
        }
        // Calling cpu() runs the static's initialiser (thread-safe, once) if nothing has yet.
        var cpuFn = (delegate* unmanaged<byte*>)(loadBase + (nint)fn);
        byte* cpu = cpuFn();
        if (cpu != (byte*)(loadBase + (nint)obj))
        {
            why = "oneDNN's cpu() does not return its static object";
            return null;
        }
        var table = new OneDnnCpuTable(cpu, path);
        var seen = table.Read();
        if (!seen.SameAs(expected))
        {
            why = $"oneDNN's CPU object holds [{seen}] where CPUID gives [{expected}]: unknown layout, left alone";
            return null;
        }
        why = "";
        return table;
    }
}
