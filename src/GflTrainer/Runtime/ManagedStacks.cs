using System.Diagnostics;
using System.Runtime.InteropServices;
using Microsoft.Diagnostics.Runtime;

namespace GflTrainer.Runtime;

/// <summary>The managed call stack of every thread of a .NET process, read from outside it with ClrMD (the library
/// behind dotnet-dump/dotnet-stack): the process is suspended through ptrace, walked with the runtime's own data
/// access library (DAC) and resumed. .NET cannot walk another thread's stack from inside the process, so a hung run
/// (<see cref="OfThisProcess"/>) starts <c>gfl stacks PID</c> on itself.</summary>
public static class ManagedStacks
{
    const int MaxFrames = 40;

    /// <summary>One line per thread ("thread TID (managed N, 'name'):") followed by its frames ("    at Method(...)"),
    /// innermost first. Throws <see cref="InvalidOperationException"/> when the process cannot be attached to (not .NET,
    /// ptrace not permitted).</summary>
    public static IReadOnlyList<string> Read(int pid)
    {
        var lines = new List<string>();
        // Collected while attached, printed after the detach: the caller may be the suspended process itself, reading
        // our output through a pipe that would otherwise fill.
        using (var target = AttachTo(pid))
        {
            var clr = target.ClrVersions.FirstOrDefault()
                ?? throw new InvalidOperationException($"process {pid} has no .NET runtime loaded");
            // The DAC must match the target's runtime build: take it from the folder of the target's libcoreclr.so.
            // ClrMD cannot read the version of a live Linux module (it reports 0.0), hence ignoreMismatch.
            var dac = Path.Combine(Path.GetDirectoryName(clr.ModuleInfo.FileName) ?? "", "libmscordaccore.so");
            using var runtime = File.Exists(dac) ? clr.CreateRuntime(dac, ignoreMismatch: true) : clr.CreateRuntime();
            foreach (var thread in runtime.Threads.Where(t => t.IsAlive))
            {
                var frames = thread.EnumerateStackTrace().Where(f => f.Method is not null).Take(MaxFrames + 1).ToList();
                if (frames.Count == 0) continue;   // runtime-internal threads (finalizer waiting, tiered JIT) without managed code
                lines.Add($"thread {thread.OSThreadId} (managed {thread.ManagedThreadId}):");
                foreach (var f in frames.Take(MaxFrames)) lines.Add($"    at {f.Method!.Signature ?? f.Method.Name}");
                if (frames.Count > MaxFrames) lines.Add("    ...");
            }
        }
        return lines;
    }

    static DataTarget AttachTo(int pid)
    {
        if (OperatingSystem.IsLinux())
        {
            if (!Directory.Exists($"/proc/{pid}")) throw new InvalidOperationException($"no process with id {pid}");
            // Only .NET processes are suspended: a native one is refused before any ptrace (nothing to read there).
            bool dotnet;
            try { dotnet = File.ReadLines($"/proc/{pid}/maps").Any(l => l.EndsWith("/libcoreclr.so", StringComparison.Ordinal)); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { dotnet = true; }   // let the attach say why
            if (!dotnet) throw new InvalidOperationException($"process {pid} has no .NET runtime loaded");
        }
        try { return DataTarget.AttachToProcess(pid, suspend: true); }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new InvalidOperationException($"cannot attach to process {pid}: {e.Message} (ptrace needs the same user, " +
                "and in containers the SYS_PTRACE capability or a seccomp profile that allows it)", e);
        }
    }

    [DllImport("libc", SetLastError = true)] static extern int prctl(int option, nint arg2, nint arg3, nint arg4, nint arg5);
    const int PrSetPtracer = 0x59616d61;   // PR_SET_PTRACER ("Yama")
    const nint PrSetPtracerAny = -1;

    /// <summary>This process's managed stacks, through a <c>gfl stacks</c> child (at most <paramref name="timeout"/>);
    /// when that is impossible, one line saying why. Under Yama ptrace_scope 1 (Ubuntu's default) only an ancestor may
    /// attach, so this process first allows any of its descendants' tracer (PR_SET_PTRACER).</summary>
    public static IReadOnlyList<string> OfThisProcess(TimeSpan timeout)
    {
        if (!OperatingSystem.IsLinux()) return ["(managed stacks: Linux only)"];
        var helper = HelperCommand();
        if (helper is null) return [$"(managed stacks: gfl not found next to {AppContext.BaseDirectory})"];
        try { _ = prctl(PrSetPtracer, PrSetPtracerAny, 0, 0, 0); }   // EINVAL without Yama: nothing to allow
        catch (EntryPointNotFoundException) { }
        var psi = new ProcessStartInfo(helper.Value.Program) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in helper.Value.Args.Append("stacks").Append(Environment.ProcessId.ToString())) psi.ArgumentList.Add(a);
        try
        {
            using var p = Process.Start(psi)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(timeout))
            {
                p.Kill(entireProcessTree: true);
                return [$"(managed stacks: gfl stacks did not finish within {timeout.TotalSeconds:F0} s)"];
            }
            p.WaitForExit();
            if (p.ExitCode != 0)
                return [$"(managed stacks unavailable: {LastLine(stderr.Result) ?? LastLine(stdout.Result) ?? $"gfl stacks exited {p.ExitCode}"})"];
            return stdout.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r')).ToList();
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            return [$"(managed stacks unavailable: {e.Message})"];
        }
    }

    static string? LastLine(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault()?.Trim();

    /// <summary>How to start gfl: the apphost this process runs as, or <c>dotnet gfl.dll</c> (also from a test host).</summary>
    static (string Program, string[] Args)? HelperCommand()
    {
        var self = Environment.ProcessPath;
        var dll = Path.Combine(AppContext.BaseDirectory, "gfl.dll");
        if (self is not null && Path.GetFileName(self) == "gfl") return (self, []);
        if (self is not null && Path.GetFileNameWithoutExtension(self) == "dotnet" && File.Exists(dll)) return (self, [dll]);
        var apphost = Path.Combine(AppContext.BaseDirectory, "gfl");
        return File.Exists(apphost) ? (apphost, []) : null;
    }
}
