using Xunit;
using GflTrainer.Runtime.Native;

namespace GflTrainer.Tests.Runtime.Native;

/// <summary>The cache table oneDNN's Xbyak derives from CPUID, computed from recorded answers of the machine kinds
/// gfl runs on (Fixtures/cpuid), and the replacement gfl derives where that table is implausible.</summary>
public class CpuCacheTopologyTests
{
    private static CpuidRecording Recording(string name) => CpuidRecording.Load(TestPaths.Fixtures("cpuid", name + ".json"));

    private const uint KiB = 1024, MiB = 1024 * 1024;

    [Fact]
    public void Zen5VmHidingItsCaches_GivesOneDnnOneByteCaches_AndTheLegacyLeavesGiveTheRealOnes()
    {
        var cpu = Recording("amd-zen5-2vcpu-vm-hidden-caches");
        var table = XbyakCacheTable.Compute(cpu);
        Assert.Equal(3u, table.Levels);
        Assert.Equal(new uint[] { 1, 1, 1 }, table.Sizes[..3]);
        Assert.Equal(new[] { 1, 2, 3 }, table.ImplausibleLevels());
        Assert.Equal(1u, table.PerCore(1));   // what makes oneDNN take the broken reorder path and divide by zero

        var estimate = CacheTopology.Estimated(cpu, sysfsCacheDir: null, logicalCpus: 2);
        Assert.Equal("CPUID 0x80000005/0x80000006", estimate.Source);
        Assert.Equal(new[] { 48 * KiB, 1 * MiB, 32 * MiB }, estimate.Table.Sizes[..3]);
        Assert.Equal(new uint[] { 1, 1, 2 }, estimate.Table.CoresSharing[..3]);
        Assert.Empty(estimate.Table.ImplausibleLevels());
    }

    [Fact]
    public void Zen3VmWithTopologyExtensions_IsPlausible()
    {
        var table = XbyakCacheTable.Compute(Recording("amd-zen3-2vcpu-vm"));
        Assert.Equal(3u, table.Levels);
        Assert.Equal(new[] { 32 * KiB, 512 * KiB, 32 * MiB }, table.Sizes[..3]);
        Assert.Empty(table.ImplausibleLevels());
    }

    /// <summary>The expected sizes are what libtorch's own oneDNN held in memory on the recording machine (read
    /// through OneDnnCpuTable when the recording was made); OneDnnCpuTableTests checks the same equality live on
    /// whatever machine runs the tests.</summary>
    [Fact]
    public void IntelVm_RecordedHere_IsPlausible_AndAHiddenLeaf4LeavesOneDnnItsDefaults()
    {
        var table = XbyakCacheTable.Compute(Recording("intel-xeon-6-2vcpu-kvm"));
        Assert.Equal(3u, table.Levels);
        Assert.Equal(new[] { 48 * KiB, 2 * MiB, 260 * MiB }, table.Sizes[..3]);
        Assert.Equal(new uint[] { 1, 1, 2 }, table.CoresSharing[..3]);
        Assert.Empty(table.ImplausibleLevels());

        // Xbyak's Intel path stops at the first zero cache type: no levels, so oneDNN uses its guesses (harmless).
        var hidden = XbyakCacheTable.Compute(Recording("intel-2vcpu-vm-hidden-leaf4"));
        Assert.Equal(0u, hidden.Levels);
        Assert.Empty(hidden.ImplausibleLevels());
        Assert.Equal(32 * KiB, hidden.PerCore(1));
    }

    [Fact]
    public void ThisMachine_RecordingRoundTrips()
    {
        if (!HardwareCpuid.IsSupported) return;
        var path = Path.Combine(Path.GetTempPath(), $"gfl-cpuid-{Guid.NewGuid():N}.json");
        try
        {
            CpuidRecording.Record(HardwareCpuid.Instance, "here").Save(path);
            var loaded = CpuidRecording.Load(path);
            Assert.Equal("here", loaded.Machine);
            Assert.True(XbyakCacheTable.Compute(loaded).SameAs(XbyakCacheTable.Compute(HardwareCpuid.Instance)));
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void BadRecording_NamesTheFile()
    {
        var path = Path.Combine(Path.GetTempPath(), $"gfl-cpuid-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, "{\"format\": \"gfl-cpuid/1\", \"leaves\": [{\"leaf\": \"0x0\"}]}");
        try
        {
            var e = Assert.Throws<GflConfigException>(() => CpuidRecording.Load(path));
            Assert.Contains(path, e.Message);
            Assert.Contains("leaves[0]", e.Message);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void Sysfs_DataAndUnifiedCachesByLevel()
    {
        var dir = Directory.CreateTempSubdirectory("gfl-sysfs-").FullName;
        try
        {
            void Index(int i, int level, string type, string size, string shared)
            {
                var d = Directory.CreateDirectory(Path.Combine(dir, $"index{i}")).FullName;
                File.WriteAllText(Path.Combine(d, "level"), $"{level}\n");
                File.WriteAllText(Path.Combine(d, "type"), type + "\n");
                File.WriteAllText(Path.Combine(d, "size"), size + "\n");
                File.WriteAllText(Path.Combine(d, "shared_cpu_list"), shared + "\n");
            }
            Index(0, 1, "Data", "48K", "0");
            Index(1, 1, "Instruction", "32K", "0");
            Index(2, 2, "Unified", "2048K", "0");
            Index(3, 3, "Unified", "260M", "0-1");
            var t = CacheTopology.FromSysfs(dir)!;
            Assert.Equal(3u, t.Levels);
            Assert.Equal(new[] { 48 * KiB, 2 * MiB, 260 * MiB }, t.Sizes[..3]);
            Assert.Equal(new uint[] { 1, 1, 2 }, t.CoresSharing[..3]);
        }
        finally { Directory.Delete(dir, true); }
        Assert.Null(CacheTopology.FromSysfs(dir));   // absent, as on VMs that hide the topology
        Assert.Equal(7, CacheTopology.CountCpus("0-3,8,10-11"));
    }

    [Fact]
    public void NeitherSource_FallsBackToOneDnnsOwnDefaults()
    {
        var noLegacy = new CpuidRecording("bare", new Dictionary<(uint, uint), CpuidResult>
        {
            [(0, 0)] = new(0x10, 0x68747541, 0x444d4163, 0x69746e65),
        });
        var e = CacheTopology.Estimated(noLegacy, sysfsCacheDir: null);
        Assert.Equal("oneDNN's defaults", e.Source);
        Assert.Equal(CacheTable.OneDnnGuessPerCore, e.Table.Sizes[..3]);
        Assert.Equal(new[] { 1, 2, 3 }, XbyakCacheTable.Compute(noLegacy).ImplausibleLevels());
    }
}
