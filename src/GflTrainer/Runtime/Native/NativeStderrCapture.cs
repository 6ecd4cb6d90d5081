using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;
using Serilog;

namespace GflTrainer.Runtime.Native;

/// <summary>
/// Captures what native code writes to file descriptor 2 during a short, bounded window and forwards it: libtorch's
/// glog-style lines (c10's LOG(WARNING), written by libc10 straight to fd 2, bypassing .NET's Console) go to the
/// Serilog logger at debug level; every other captured line goes back to the real stderr, byte for byte, after the
/// window, so nothing is lost. fd 2 is restored in a finally block: a crash message after the window (or a
/// managed exception from the action) reaches the terminal as usual.
/// </summary>
/// <remarks>
/// The window redirects fd 2 into an unlinked temporary file rather than a pipe: a pipe holds 64 KB, and a writer
/// with nobody reading would block; a file never does. Everything the process writes to fd 2 during the window is
/// captured, .NET's Console.Error from other threads included (passed through afterwards, slightly later than it
/// would have appeared). One window at a time (process-wide lock). Linux/macOS only (libc dup/dup2); elsewhere the
/// action simply runs uncaptured.
/// </remarks>
public static partial class NativeStderrCapture
{
    private const int StderrFd = 2;
    private static readonly object Gate = new();

    // c10/util/Logging.cpp's non-glog format: "[" severity-letter, then "MMDD HH:MM:SS.nnnnnnnnn thread " (absent in
    // older builds), then "file:line] message", e.g. "[W1127 17:12:25.123456789 NNPACK.cpp:56] Could not ...".
    [GeneratedRegex(@"^\[(?<sev>[IWEF])[^\]]*?(?<file>[^\s\]]+):(?<line>\d+)\] ?(?<msg>.*)$")]
    private static partial Regex GlogLine();

    [DllImport("libc", EntryPoint = "dup")] private static extern int Dup(int fd);
    [DllImport("libc", EntryPoint = "dup2")] private static extern int Dup2(int oldFd, int newFd);
    [DllImport("libc", EntryPoint = "close")] private static extern int Close(int fd);
    [DllImport("libc", EntryPoint = "fflush")] private static extern int FFlush(IntPtr stream);
    [DllImport("libc", EntryPoint = "write")] private static extern unsafe nint Write(int fd, byte* buf, nint count);

    /// <summary>Runs <paramref name="action"/> with fd 2 captured, then forwards what was written (see the class
    /// summary) to <paramref name="log"/> (default: Serilog's static <see cref="Log.Logger"/>).</summary>
    /// <returns>the libtorch lines that were routed to the logger (for callers that add an explanation).</returns>
    public static IReadOnlyList<LibtorchLogLine> Run(Action action, ILogger? log = null)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS()) { action(); return []; }
        lock (Gate)
        {
            var path = Path.Combine(Path.GetTempPath(), $"gfl-stderr-{Environment.ProcessId}-{Guid.NewGuid():N}");
            using var file = File.Open(path, new FileStreamOptions
            {
                Mode = FileMode.CreateNew, Access = FileAccess.ReadWrite, Options = FileOptions.DeleteOnClose,
            });
            int fileFd = (int)file.SafeFileHandle.DangerousGetHandle();   // on Unix the handle is the descriptor
            int saved = Dup(StderrFd);
            if (saved < 0) { action(); return []; }
            var routed = new List<LibtorchLogLine>();
            try
            {
                FFlush(IntPtr.Zero);   // nothing buffered before the window may land in it
                if (Dup2(fileFd, StderrFd) < 0) { action(); return []; }
                try { action(); }
                finally
                {
                    FFlush(IntPtr.Zero);   // C stdio / std::cerr buffers written by the action land in the file
                    Dup2(saved, StderrFd);
                }
            }
            finally
            {
                Close(saved);
                // Also when the action threw: what it wrote before failing is forwarded, not lost.
                routed = Forward(ReadAll(file), log ?? Log.Logger);
            }
            return routed;
        }
    }

    private static byte[] ReadAll(FileStream file)
    {
        long length = RandomAccess.GetLength(file.SafeFileHandle);
        var bytes = new byte[length];
        int read = 0;
        while (read < length)
        {
            int n = RandomAccess.Read(file.SafeFileHandle, bytes.AsSpan(read), read);
            if (n <= 0) break;
            read += n;
        }
        return read < length ? bytes[..read] : bytes;
    }

    /// <summary>Splits captured bytes into lines: libtorch info/warning lines to the logger at debug level, the rest
    /// (libtorch errors included) back to the real stderr unchanged.</summary>
    private static List<LibtorchLogLine> Forward(byte[] captured, ILogger log)
    {
        var routed = new List<LibtorchLogLine>();
        int start = 0;
        while (start < captured.Length)
        {
            int nl = Array.IndexOf(captured, (byte)'\n', start);
            int end = nl < 0 ? captured.Length : nl + 1;   // the line's bytes, its newline included
            var text = Encoding.UTF8.GetString(captured, start, end - start).TrimEnd('\n', '\r');
            var m = GlogLine().Match(text);
            if (m.Success && m.Groups["sev"].Value is "I" or "W")
            {
                var line = new LibtorchLogLine(m.Groups["sev"].Value[0], m.Groups["file"].Value,
                    int.Parse(m.Groups["line"].Value), m.Groups["msg"].Value);
                log.Debug("libtorch {Severity} {File:l}:{Line}: {Message:l}", line.Severity, line.File, line.Line, line.Message);
                routed.Add(line);
            }
            else
                WriteToStderr(captured.AsSpan(start, end - start));
            start = end;
        }
        return routed;
    }

    private static unsafe void WriteToStderr(ReadOnlySpan<byte> bytes)
    {
        fixed (byte* p = bytes)
        {
            nint done = 0;
            while (done < bytes.Length)
            {
                nint n = Write(StderrFd, p + done, bytes.Length - done);
                if (n <= 0) return;   // stderr closed: nowhere left to put it
                done += n;
            }
        }
    }
}

/// <summary>One glog-style line of libtorch: severity letter (I, W), source file and line, message.</summary>
public sealed record LibtorchLogLine(char Severity, string File, int Line, string Message);
