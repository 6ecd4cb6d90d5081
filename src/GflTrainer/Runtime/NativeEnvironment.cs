using System.Runtime.InteropServices;
using System.Text;

namespace GflTrainer.Runtime;

/// <summary>Process-level settings for the native libraries; call before the first TorchSharp use.</summary>
public static class NativeEnvironment
{
    /// <summary>The glibc tunable that <see cref="EnsureHugePageMalloc"/> adds.</summary>
    public const string HugePageTunable = "glibc.malloc.hugetlb=1";

    [DllImport("libc", EntryPoint = "setenv")]
    private static extern int SetEnv(string name, string value, int overwrite);

    [DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int MallocTrim(nuint pad);

    /// <summary>Returns the C heap's free pages to the system (glibc keeps freed memory for reuse), so that what comes
    /// next is measured from what is really in use. No-op elsewhere.</summary>
    public static void TrimHeap()
    {
        if (OperatingSystem.IsLinux()) MallocTrim(0);
    }

    [DllImport("libc", EntryPoint = "execv")]
    private static extern int ExecV(string path, string?[] argv);

    /// <summary>
    /// Sets OMP_WAIT_POLICY=PASSIVE for libtorch's bundled libgomp unless the user set it. libgomp's default
    /// (ACTIVE) makes idle OpenMP threads spin between parallel regions; when anything else wants the cores (our
    /// loader threads, another process) every small op waits for descheduled spinning threads. Measured on the
    /// 2-core machine under load: a tiny-model training step took 3.09 s with the default and 0.196 s with PASSIVE,
    /// with bit-identical losses. libgomp reads the variable when it loads, and .NET's Environment.SetEnvironmentVariable
    /// does not reach the native environment on Unix, hence libc setenv.
    /// </summary>
    public static void Prepare()
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS()) return;
        if (Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") is not null) return;
        SetEnv("OMP_WAIT_POLICY", "PASSIVE", 0);
    }

    /// <summary>Sets a variable in the native environment (what libtorch, CUDA and cuBLAS read through getenv), unless
    /// it is already set there. Returns false when it was set already or the platform has no setenv.</summary>
    public static bool SetNativeDefault(string name, string value)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS()) return false;
        if (Environment.GetEnvironmentVariable(name) is not null) return false;
        Environment.SetEnvironmentVariable(name, value);
        return SetEnv(name, value, 0) == 0;
    }

    /// <summary>
    /// Makes glibc's malloc back large allocations with transparent huge pages, by re-executing the process once with
    /// <see cref="HugePageTunable"/> added to GLIBC_TUNABLES (glibc reads tunables only at start-up; there is no
    /// mallopt for it). Why: libtorch's CPU allocator is plain malloc, and glibc serves every block above its mmap
    /// threshold (at most 32 MB) with a fresh mmap that free() unmaps again, so each training step faults its
    /// activations back in 4 KB pages: ~3.5 M page faults per R50 step at 1344x800, ~20 % of the CPU time (the
    /// reference pays the same). With huge pages the kernel takes one fault per 2 MB; peak memory is unchanged.
    /// Nothing happens when the user already chose a <c>glibc.malloc.hugetlb</c> value (set it to 0 to opt out),
    /// when the kernel has transparent huge pages off, outside Linux, or when the re-exec itself fails (the process
    /// then just goes on). Call first thing in Main: nothing may have run that the new image would repeat.
    /// </summary>
    public static void EnsureHugePageMalloc()
    {
        if (!OperatingSystem.IsLinux()) return;
        var current = Environment.GetEnvironmentVariable("GLIBC_TUNABLES");
        if (!ShouldEnableHugePages(current, ReadOrNull("/sys/kernel/mm/transparent_hugepage/enabled"))) return;
        string?[] argv;
        try
        {
            argv = ParseCmdline(File.ReadAllBytes("/proc/self/cmdline"));
        }
        catch (IOException) { return; }
        catch (UnauthorizedAccessException) { return; }
        if (argv.Length == 0) return;
        if (SetEnv("GLIBC_TUNABLES", WithHugePages(current), 1) != 0) return;
        ExecV("/proc/self/exe", argv.Append(null).ToArray());
        // Only reached when execv failed: carry on without huge pages rather than refuse to start.
    }

    /// <summary>Whether to add the tunable: not when <paramref name="tunables"/> already names a hugetlb value, nor
    /// when the kernel's THP mode (<c>/sys/kernel/mm/transparent_hugepage/enabled</c>, e.g. "always [madvise]
    /// never") is unknown or <c>never</c>.</summary>
    public static bool ShouldEnableHugePages(string? tunables, string? thpMode)
    {
        if (tunables is not null && tunables.Contains("glibc.malloc.hugetlb", StringComparison.Ordinal)) return false;
        return thpMode is not null && (thpMode.Contains("[always]", StringComparison.Ordinal)
            || thpMode.Contains("[madvise]", StringComparison.Ordinal));
    }

    /// <summary>GLIBC_TUNABLES with <see cref="HugePageTunable"/> appended (tunables are colon-separated).</summary>
    public static string WithHugePages(string? tunables) =>
        string.IsNullOrEmpty(tunables) ? HugePageTunable : $"{tunables}:{HugePageTunable}";

    /// <summary>Whether this process runs with glibc's huge-page malloc (for <c>gfl info</c> and benchmark JSON).</summary>
    public static bool HugePageMallocActive =>
        OperatingSystem.IsLinux() && (Environment.GetEnvironmentVariable("GLIBC_TUNABLES") ?? "")
            .Split(':').Contains(HugePageTunable);

    /// <summary>/proc/self/cmdline: NUL-terminated arguments, argv[0] first.</summary>
    public static string[] ParseCmdline(byte[] cmdline)
    {
        var text = Encoding.UTF8.GetString(cmdline);
        if (text.EndsWith('\0')) text = text[..^1];
        return text.Length == 0 ? Array.Empty<string>() : text.Split('\0');
    }

    private static string? ReadOrNull(string path)
    {
        try { return File.ReadAllText(path); }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }
}
