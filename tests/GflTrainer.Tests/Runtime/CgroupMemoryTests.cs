using GflTrainer.Runtime;
using Xunit;

namespace GflTrainer.Tests.Runtime;

/// <summary>The cgroup memory limit and anonymous usage, from recorded cgroup v1 and v2 layouts (the machine running
/// the tests may have neither limit).</summary>
public class CgroupMemoryTests
{
    static string Tree(params (string Path, string Text)[] files)
    {
        var root = Directory.CreateTempSubdirectory("gfl-cgroup").FullName;
        foreach (var (path, text) in files)
        {
            var full = Path.Combine(root, path);
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            File.WriteAllText(full, text);
        }
        return root;
    }

    [Fact]
    public void V1_UsesTheHierarchicalLimitAndTotalRss_NotThePageCache()
    {
        var root = Tree(("memory/slurm/job_7/memory.stat", "cache 900000000\nrss 1000\ntotal_cache 900000000\ntotal_rss 734003200\n" +
                                                             "hierarchical_memory_limit 1073741824\n"),
                        ("memory/slurm/job_7/memory.limit_in_bytes", "9223372036854771712\n"));
        var m = CgroupMemory.Detect(root, "12:pids:/slurm/job_7\n4:memory:/slurm/job_7\n0::/\n")!;
        Assert.Equal(1L << 30, m.LimitBytes);
        Assert.Equal(734003200, m.UsageBytes());

        var unlimited = Tree(("memory/x/memory.stat", "total_rss 1\nhierarchical_memory_limit 9223372036854771712\n"));
        Assert.Null(CgroupMemory.Detect(unlimited, "4:memory:/x\n"));
    }

    [Fact]
    public void V2_TakesTheTightestLimitOfTheCgroupAndItsAncestors_AndAnon()
    {
        var root = Tree(("cgroup.controllers", "cpu memory\n"),
                        ("system.slice/memory.max", "2147483648\n"),
                        ("system.slice/gfl.service/memory.max", "max\n"),
                        ("system.slice/gfl.service/memory.stat", "anon 536870912\nfile 99999999999\n"));
        var m = CgroupMemory.Detect(root, "0::/system.slice/gfl.service\n")!;
        Assert.Equal(2L << 30, m.LimitBytes);
        Assert.Equal(512L << 20, m.UsageBytes());

        var none = Tree(("cgroup.controllers", ""), ("u/memory.max", "max\n"), ("u/memory.stat", "anon 1\n"));
        Assert.Null(CgroupMemory.Detect(none, "0::/u\n"));

        // Hybrid mount: v2 under unified/, and a container whose own cgroup is the mount itself.
        var hybrid = Tree(("unified/memory.max", "1048576\n"), ("unified/memory.stat", "anon 7\n"));
        Assert.Equal(1048576, CgroupMemory.Detect(hybrid, "0::/\n")!.LimitBytes);
    }

    [Fact]
    public void NoCgroupFileSystem_IsNoLimit()
    {
        var empty = Directory.CreateTempSubdirectory("gfl-cgroup").FullName;
        Assert.Null(CgroupMemory.Detect(empty, "4:memory:/x\n"));
        Assert.Null(CgroupMemory.Detect(empty, "garbage"));
        _ = CgroupMemory.Detect();   // this machine's: must not throw, limit or not
    }
}
