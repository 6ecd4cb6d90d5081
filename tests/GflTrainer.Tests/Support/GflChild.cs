using System.Diagnostics;
using System.Text;

namespace GflTrainer.Tests.Support;

/// <summary>The built <c>gfl</c> run as a child process (<c>dotnet gfl.dll ARGS</c>, or under a launcher such as
/// <c>mpirun</c>), its stdout and stderr collected together line by line. Tests that kill, signal or stall a run, or
/// start several processes, need a real process; this is the one way they start it. Disposing kills what still runs.</summary>
public sealed class GflChild : IDisposable
{
    public static string Dll => Path.Combine(AppContext.BaseDirectory, "gfl.dll");

    private readonly StringBuilder _output = new();
    public Process Process { get; }
    public int Id => Process.Id;
    public bool HasExited => Process.HasExited;

    private GflChild(ProcessStartInfo psi)
    {
        psi.RedirectStandardOutput = true;
        psi.RedirectStandardError = true;
        Process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {psi.FileName}");
        Process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_output) _output.AppendLine(e.Data); };
        Process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_output) _output.AppendLine(e.Data); };
        Process.BeginOutputReadLine();
        Process.BeginErrorReadLine();
    }

    /// <summary><c>dotnet gfl.dll</c> with <paramref name="args"/> (each one argument, no quoting needed).</summary>
    public static GflChild Start(IEnumerable<string> args, IReadOnlyDictionary<string, string?>? environment = null) =>
        StartProgram("dotnet", [Dll, .. args], environment);

    /// <summary>Any program (a launcher that starts gfl itself) with the same output collection.</summary>
    public static GflChild StartProgram(string program, IEnumerable<string> args, IReadOnlyDictionary<string, string?>? environment = null)
    {
        var psi = new ProcessStartInfo(program);
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var (k, v) in environment ?? new Dictionary<string, string?>())
            if (v is null) psi.Environment.Remove(k); else psi.Environment[k] = v;
        return new GflChild(psi);
    }

    /// <summary>stdout and stderr so far, interleaved as they arrived.</summary>
    public string Output { get { lock (_output) return _output.ToString(); } }

    /// <summary>Polls <paramref name="condition"/> while the process runs; false when it exited or the time ran out first.</summary>
    public bool WaitUntil(Func<bool> condition, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline && !Process.HasExited)
        {
            if (condition()) return true;
            Thread.Sleep(5);
        }
        return !Process.HasExited && condition();
    }

    /// <summary>Waits for the exit (and the end of its output) and returns the exit code; a process still running after
    /// <paramref name="timeout"/> is killed and the test fails with what it printed.</summary>
    public int WaitForExit(TimeSpan timeout)
    {
        if (!Process.WaitForExit(timeout))
        {
            Process.Kill(entireProcessTree: true);
            Process.WaitForExit();
            throw new Xunit.Sdk.XunitException($"still running after {timeout.TotalSeconds:F0} s; killed. Output:\n{Output}");
        }
        Process.WaitForExit();   // drains the asynchronous output readers
        return Process.ExitCode;
    }

    /// <summary>SIGKILL of the process and its children, then waits for it.</summary>
    public void Kill()
    {
        Process.Kill(entireProcessTree: true);
        Process.WaitForExit();
    }

    public void Dispose()
    {
        try { if (!Process.HasExited) Kill(); }
        catch (InvalidOperationException) { }
        Process.Dispose();
    }
}
