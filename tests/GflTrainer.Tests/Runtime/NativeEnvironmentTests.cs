using System.Diagnostics;
using System.Text;
using Xunit;
using GflTrainer.Runtime;
using GflTrainer.Tests.Support;

namespace GflTrainer.Tests.Runtime;

public class NativeEnvironmentTests
{
    [Theory]
    [InlineData(null, "always [madvise] never\n", true)]
    [InlineData(null, "[always] madvise never\n", true)]
    [InlineData(null, "always madvise [never]\n", false)]
    [InlineData(null, null, false)]
    [InlineData("glibc.malloc.hugetlb=0", "always [madvise] never", false)]
    [InlineData("glibc.malloc.arena_max=2:glibc.malloc.hugetlb=2", "always [madvise] never", false)]
    [InlineData("glibc.malloc.arena_max=2", "always [madvise] never", true)]
    public void ShouldEnableHugePages_RespectsTheUsersTunableAndTheKernelMode(string? tunables, string? thp, bool expected) =>
        Assert.Equal(expected, NativeEnvironment.ShouldEnableHugePages(tunables, thp));

    [Theory]
    [InlineData(null, "glibc.malloc.hugetlb=1")]
    [InlineData("", "glibc.malloc.hugetlb=1")]
    [InlineData("glibc.malloc.arena_max=2", "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1")]
    public void WithHugePages_AppendsToTheUsersTunables(string? tunables, string expected) =>
        Assert.Equal(expected, NativeEnvironment.WithHugePages(tunables));

    [Fact]
    public void ParseCmdline_KeepsEmptyAndSpacedArgumentsInOrder()
    {
        var raw = Encoding.UTF8.GetBytes("dotnet\0gfl.dll\0train\0--set\0a b=é\0\0x\0");
        Assert.Equal(new[] { "dotnet", "gfl.dll", "train", "--set", "a b=é", "", "x" }, NativeEnvironment.ParseCmdline(raw));
        Assert.Empty(NativeEnvironment.ParseCmdline(Array.Empty<byte>()));
    }

    /// <summary>The real re-exec: gfl restarts itself with the tunable (when the kernel offers THP) and keeps its
    /// arguments; a user's explicit hugetlb=0 is left alone.</summary>
    [Theory]
    [InlineData(null)]
    [InlineData("glibc.malloc.hugetlb=0")]
    public void Gfl_ReexecutesWithHugePagesUnlessTheUserChose(string? userTunables)
    {
        if (!OperatingSystem.IsLinux()) return;
        using var p = GflChild.Start(["info", "--device", "cpu"], new Dictionary<string, string?> { ["GLIBC_TUNABLES"] = userTunables });
        int code = p.WaitForExit(TimeSpan.FromMinutes(2));
        var output = p.Output;
        Assert.True(code == 0, output);
        Assert.Contains("--device       cpu", output);   // arguments survived the re-exec
        string? thp = File.Exists("/sys/kernel/mm/transparent_hugepage/enabled")
            ? File.ReadAllText("/sys/kernel/mm/transparent_hugepage/enabled") : null;
        bool expectOn = NativeEnvironment.ShouldEnableHugePages(userTunables, thp);
        Assert.Contains(expectOn ? "malloc         huge pages" : "malloc         default", output);
    }
}
