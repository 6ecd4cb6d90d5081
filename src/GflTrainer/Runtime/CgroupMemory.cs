namespace GflTrainer.Runtime;

/// <summary>The memory limit of the cgroup this process runs in (what a container runtime, Slurm's cgroup plugin or a
/// systemd unit sets, and what the kernel's OOM killer enforces) and the part of it in use that cannot be reclaimed:
/// anonymous memory (<c>anon</c> in cgroup v2's memory.stat, <c>total_rss</c> in v1), not the page cache, which the
/// kernel drops under pressure and which image reading fills up to the limit.</summary>
/// <param name="StatFile">the cgroup's memory.stat.</param>
/// <param name="UsageKey">the memory.stat field of anonymous memory.</param>
/// <param name="LimitBytes">the tightest limit of the cgroup and its ancestors.</param>
public sealed record CgroupMemory(string StatFile, string UsageKey, long LimitBytes)
{
    /// <summary>Limits at or above this are "no limit" (v1 writes 2^63 rounded down to a page).</summary>
    const long Unlimited = 1L << 62;

    /// <summary>The cgroup of this process with a memory limit, or null when there is none (or no cgroup file system).</summary>
    /// <param name="root">where the cgroup file systems are mounted.</param>
    /// <param name="procSelfCgroup">the text of /proc/self/cgroup (tests pass their own).</param>
    public static CgroupMemory? Detect(string root = "/sys/fs/cgroup", string? procSelfCgroup = null)
    {
        try
        {
            procSelfCgroup ??= File.ReadAllText("/proc/self/cgroup");
            var lines = procSelfCgroup.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(':', 3)).Where(p => p.Length == 3).ToList();
            // v1 (or hybrid, where the memory controller stays on v1): "N:memory:/path".
            if (lines.FirstOrDefault(p => p[1].Split(',').Contains("memory")) is { } v1)
                return V1(Path.Combine(root, "memory"), v1[2]);
            if (lines.FirstOrDefault(p => p[0] == "0" && p[1] == "") is { } v2)
                return V2(File.Exists(Path.Combine(root, "cgroup.controllers")) ? root : Path.Combine(root, "unified"), v2[2]);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException) { }
        return null;
    }

    /// <summary>Bytes of anonymous memory the cgroup uses now.</summary>
    public long UsageBytes() => Field(File.ReadAllLines(StatFile), UsageKey) ?? 0;

    static CgroupMemory? V1(string mount, string path)
    {
        // Inside a container with its own cgroup namespace the process's path is not under the mount: use the mount.
        var dir = Directory.Exists(Join(mount, path)) ? Join(mount, path) : mount;
        var stat = Path.Combine(dir, "memory.stat");
        if (!File.Exists(stat)) return null;
        // hierarchical_memory_limit already takes the ancestors' limits into account.
        long limit = Field(File.ReadAllLines(stat), "hierarchical_memory_limit")
            ?? long.Parse(File.ReadAllText(Path.Combine(dir, "memory.limit_in_bytes")).Trim());
        return limit >= Unlimited ? null : new CgroupMemory(stat, "total_rss", limit);
    }

    static CgroupMemory? V2(string mount, string path)
    {
        var own = Directory.Exists(Join(mount, path)) ? Join(mount, path) : mount;
        var stat = Path.Combine(own, "memory.stat");
        if (!File.Exists(stat)) return null;
        long limit = long.MaxValue;
        // memory.max of this cgroup and every ancestor up to the mount: the tightest one applies.
        for (var dir = own; dir is not null && dir.StartsWith(mount, StringComparison.Ordinal); dir = Path.GetDirectoryName(dir))
        {
            var max = Path.Combine(dir, "memory.max");
            if (File.Exists(max) && File.ReadAllText(max).Trim() is var text && text != "max") limit = Math.Min(limit, long.Parse(text));
            if (dir == mount) break;
        }
        return limit >= Unlimited ? null : new CgroupMemory(stat, "anon", limit);
    }

    static string Join(string mount, string path) => Path.Join(mount, path.TrimStart('/')).TrimEnd('/');

    static long? Field(IEnumerable<string> statLines, string key)
    {
        foreach (var line in statLines)
        {
            var parts = line.Split(' ', 2);
            if (parts.Length == 2 && parts[0] == key && long.TryParse(parts[1], out var v)) return v;
        }
        return null;
    }
}
