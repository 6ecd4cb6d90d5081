namespace GflTrainer.Runtime.Native;

/// <summary>
/// This machine's data caches from the sources that survive a hypervisor hiding the cache topology: AMD's legacy
/// leaves 0x80000005 (L1d, ECX[31:24] KiB) and 0x80000006 (L2 ECX[31:16] KiB, L3 EDX[31:18] x 512 KiB), which VMs
/// keep when they zero leaf 0x8000001D; then Linux's /sys/devices/system/cpu/cpu0/cache; then oneDNN's own guesses.
/// Used to give oneDNN a plausible table where Xbyak's is implausible (<see cref="XbyakCacheTable"/>).
/// </summary>
public static class CacheTopology
{
    public const string SysfsCacheDir = "/sys/devices/system/cpu/cpu0/cache";

    /// <summary>A replacement table and where its numbers came from.</summary>
    public sealed record Estimate(CacheTable Table, string Source);

    public static Estimate Estimated(ICpuid cpu, string? sysfsCacheDir = SysfsCacheDir, int? logicalCpus = null)
    {
        int cpus = Math.Max(1, logicalCpus ?? Environment.ProcessorCount);
        if (FromAmdLegacyLeaves(cpu, cpus) is { } legacy) return new Estimate(legacy, "CPUID 0x80000005/0x80000006");
        if (sysfsCacheDir is not null && FromSysfs(sysfsCacheDir) is { } sys) return new Estimate(sys, sysfsCacheDir);
        var g = CacheTable.OneDnnGuessPerCore;
        return new Estimate(new CacheTable(3, Pad([g[0], g[1], g[2]]), Pad([1, 1, 1])), "oneDNN's defaults");
    }

    /// <summary>L1d/L2 per core and L3 per package from the legacy AMD leaves; the L3 is taken as shared by the
    /// logical processors the package reports in 0x80000008 ECX[7:0] + 1 (what a VM shows; else
    /// <paramref name="logicalCpus"/>). Null when the leaves are absent or zero.</summary>
    public static CacheTable? FromAmdLegacyLeaves(ICpuid cpu, int logicalCpus)
    {
        if (!CpuIdentity.IsAmd(cpu)) return null;
        uint maxExt = cpu.Query(0x80000000, 0).Eax;
        if (maxExt < 0x80000006) return null;
        uint l1 = (cpu.Query(0x80000005, 0).Ecx >> 24) * 1024;
        var l6 = cpu.Query(0x80000006, 0);
        uint l2 = (l6.Ecx >> 16) * 1024;
        uint l3 = (l6.Edx >> 18) * 512 * 1024;
        if (l1 < CacheTable.SmallestPlausibleSize || l2 < CacheTable.SmallestPlausibleSize) return null;
        uint threads = maxExt >= 0x80000008 ? (cpu.Query(0x80000008, 0).Ecx & 0xff) + 1 : (uint)logicalCpus;
        if (l3 < CacheTable.SmallestPlausibleSize)
            return new CacheTable(2, Pad([l1, l2]), Pad([1, 1]));
        return new CacheTable(3, Pad([l1, l2, l3]), Pad([1, 1, Math.Max(1, threads)]));
    }

    /// <summary>Data and unified caches by level from sysfs (index*/level, type, size, shared_cpu_list); null when the
    /// directory is absent (as on VMs that hide the topology) or lists no data cache.</summary>
    public static CacheTable? FromSysfs(string dir)
    {
        if (!Directory.Exists(dir)) return null;
        var byLevel = new SortedDictionary<int, (uint Size, uint Sharing)>();
        foreach (var index in Directory.GetDirectories(dir, "index*"))
        {
            try
            {
                var type = File.ReadAllText(Path.Combine(index, "type")).Trim();
                if (type is not ("Data" or "Unified")) continue;
                int level = int.Parse(File.ReadAllText(Path.Combine(index, "level")).Trim());
                uint size = ParseSize(File.ReadAllText(Path.Combine(index, "size")).Trim());
                uint sharing = (uint)Math.Max(1, CountCpus(File.ReadAllText(Path.Combine(index, "shared_cpu_list")).Trim()));
                if (size >= CacheTable.SmallestPlausibleSize) byLevel[level] = (size, sharing);
            }
            catch (Exception e) when (e is IOException or FormatException or UnauthorizedAccessException) { }
        }
        if (byLevel.Count == 0 || byLevel.Keys.First() != 1) return null;
        var levels = byLevel.Values.ToArray();
        return new CacheTable((uint)levels.Length, Pad(levels.Select(l => l.Size).ToArray()), Pad(levels.Select(l => l.Sharing).ToArray()));
    }

    /// <summary>"48K", "2048K", "32M" as the kernel writes cache sizes.</summary>
    public static uint ParseSize(string s)
    {
        ulong mult = s.EndsWith('K') ? 1024UL : s.EndsWith('M') ? 1UL << 20 : s.EndsWith('G') ? 1UL << 30 : 1UL;
        var digits = char.IsDigit(s[^1]) ? s : s[..^1];
        return (uint)Math.Min(uint.MaxValue, ulong.Parse(digits) * mult);
    }

    /// <summary>CPUs in a kernel CPU list such as "0-3,8,10-11".</summary>
    public static int CountCpus(string list) =>
        list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Sum(part =>
        {
            var ends = part.Split('-');
            return ends.Length == 2 ? int.Parse(ends[1]) - int.Parse(ends[0]) + 1 : 1;
        });

    private static uint[] Pad(uint[] values)
    {
        var a = new uint[10];
        values.CopyTo(a, 0);
        return a;
    }
}
