using System.Runtime.InteropServices;
using System.Text;
using Serilog;
using Serilog.Core;
using Serilog.Events;
using Xunit;
using GflTrainer.Runtime.Native;

namespace GflTrainer.Tests.Runtime.Native;

/// <summary>Collects log events in memory.</summary>
internal sealed class ListSink : ILogEventSink
{
    public List<LogEvent> Events { get; } = [];
    public void Emit(LogEvent e) { lock (Events) Events.Add(e); }
    public List<string> Messages() { lock (Events) return Events.Select(e => e.RenderMessage()).ToList(); }
}

[Collection("native stderr")]   // redirects the process's fd 2: not in parallel with itself
public class NativeStderrCaptureTests
{
    [DllImport("libc", EntryPoint = "write")] private static extern unsafe nint Write(int fd, byte* buf, nint count);
    [DllImport("libc", EntryPoint = "dup")] private static extern int Dup(int fd);
    [DllImport("libc", EntryPoint = "dup2")] private static extern int Dup2(int oldFd, int newFd);
    [DllImport("libc", EntryPoint = "close")] private static extern int Close(int fd);

    /// <summary>What native code does: write(2, ...), no .NET Console involved.</summary>
    private static unsafe void NativeWrite(string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        fixed (byte* p = bytes) Assert.Equal(bytes.Length, (long)Write(2, p, bytes.Length));
    }

    /// <summary>Runs <paramref name="body"/> with the test's own fd 2 pointed at a file (standing in for the
    /// terminal) and returns what reached it.</summary>
    private static string WithStderrInFile(Action body)
    {
        var path = Path.GetTempFileName();
        int saved = Dup(2);
        using (var f = File.Open(path, FileMode.Truncate, FileAccess.Write))
        {
            Assert.True(Dup2((int)f.SafeFileHandle.DangerousGetHandle(), 2) >= 0);
            try { body(); }
            finally { Dup2(saved, 2); Close(saved); }
        }
        var text = File.ReadAllText(path);
        File.Delete(path);
        return text;
    }

    private static (ILogger Log, ListSink Sink) DebugLogger()
    {
        var sink = new ListSink();
        return (new LoggerConfiguration().MinimumLevel.Debug().WriteTo.Sink(sink).CreateLogger(), sink);
    }

    [Fact]
    public void LibtorchLinesGoToTheLogger_OtherLinesPassThrough_AndFd2IsRestored()
    {
        var (log, sink) = DebugLogger();
        IReadOnlyList<LibtorchLogLine> routed = [];
        var terminal = WithStderrInFile(() =>
        {
            NativeWrite("before the window\n");
            routed = NativeStderrCapture.Run(() =>
            {
                NativeWrite("[W1127 17:12:25.123456789 NNPACK.cpp:56] Could not initialize NNPACK! Reason: Unsupported hardware.\n");
                NativeWrite("some other native line\n");
                NativeWrite("[W NNPACK.cpp:64] old-style line\n");
                NativeWrite("[E1127 17:12:25.1 foo.cpp:3] an error stays visible\n");
                NativeWrite("no trailing newline");
            }, log);
            NativeWrite("\nafter the window\n");   // reaches the original fd 2 again
        });
        Assert.Equal("before the window\nsome other native line\n[E1127 17:12:25.1 foo.cpp:3] an error stays visible\n" +
            "no trailing newline\nafter the window\n", terminal);
        Assert.Equal([new LibtorchLogLine('W', "NNPACK.cpp", 56, "Could not initialize NNPACK! Reason: Unsupported hardware."),
            new LibtorchLogLine('W', "NNPACK.cpp", 64, "old-style line")], routed);
        Assert.All(sink.Events, e => Assert.Equal(LogEventLevel.Debug, e.Level));
        Assert.Equal(["libtorch W NNPACK.cpp:56: Could not initialize NNPACK! Reason: Unsupported hardware.",
            "libtorch W NNPACK.cpp:64: old-style line"], sink.Messages());
    }

    [Fact]
    public void AnExceptionInTheWindow_StillRestoresFd2()
    {
        var (log, _) = DebugLogger();
        var terminal = WithStderrInFile(() =>
        {
            Assert.Throws<InvalidOperationException>(() => NativeStderrCapture.Run(() =>
            {
                NativeWrite("written before the failure\n");
                throw new InvalidOperationException("boom");
            }, log));
            NativeWrite("after\n");
        });
        Assert.Equal("written before the failure\nafter\n", terminal);
    }

    [Fact]
    public void InitializeQuietly_TwiceIsHarmless_AndPrintsNothingToTheTerminal()
    {
        var (log, sink) = DebugLogger();
        var terminal = WithStderrInFile(() =>
        {
            LibtorchWarnings.InitializeQuietly(log);
            LibtorchWarnings.InitializeQuietly(log);
        });
        Assert.Equal("", terminal);
        // On this development machine NNPACK initialises (no warning to route). The initialisation ran at most once
        // (exactly once here unless another caller in this process got there first).
        Assert.True(sink.Messages().Count(m => m.StartsWith("libtorch NNPACK available:")) <= 1);
        Assert.True(LibtorchWarnings.Initialized);
        using var x = TorchSharp.torch.ones(1, 1, 4, 4);   // libtorch still works after the window
        using var w = TorchSharp.torch.ones(1, 1, 3, 3);
        using var y = TorchSharp.torch.nn.functional.conv2d(x, w);
        Assert.Equal(9f, y[0, 0, 0, 0].item<float>());
    }
}
