using System.Diagnostics;
using GflTrainer.Tests.Support;
using System.Text.RegularExpressions;
using GflTrainer.Tests.Runtime.Native;
using GflTrainer.Training;
using Serilog;
using Serilog.Events;
using Xunit;

namespace GflTrainer.Tests.Training;

/// <summary>The work-directory lock of <c>gfl train</c>: the flock itself (in this process and across processes,
/// released by the kernel on SIGKILL) and the decisions taken on the record a previous holder left.</summary>
public class WorkDirLockTests
{
    private static string NewWorkDir() => Directory.CreateTempSubdirectory("gfl-lock").FullName;

    private static (ILogger Log, ListSink Sink) Logger()
    {
        var sink = new ListSink();
        return (new LoggerConfiguration().MinimumLevel.Debug().WriteTo.Sink(sink).CreateLogger(), sink);
    }

    private static List<string> Warnings(ListSink sink)
    {
        lock (sink.Events) return sink.Events.Where(e => e.Level >= LogEventLevel.Warning).Select(e => e.RenderMessage()).ToList();
    }

    private static string LockFile(string dir) => Path.Combine(dir, WorkDirLock.FileName);

    /// <summary>A record as another holder would have left it (the on-disk format, written independently of the code).</summary>
    private static void WriteRecord(string dir, int pid, string host, DateTime heartbeatUtc) =>
        File.WriteAllText(LockFile(dir),
            $$"""{"pid":{{pid}},"host":"{{host}}","started_utc":"{{heartbeatUtc.AddHours(-1):O}}","heartbeat_utc":"{{heartbeatUtc:O}}","gfl_version":"0.0.1"}""");

    /// <summary>A pid with no process on this machine (counting down from the kernel's largest pid).</summary>
    private static int DeadPid()
    {
        int max = int.Parse(File.ReadAllText("/proc/sys/kernel/pid_max").Trim());
        for (int pid = max - 1; ; pid--)
            if (!Directory.Exists($"/proc/{pid}")) return pid;
    }

    /// <summary>flock locks belong to an open file description, so a second open in the same process conflicts too.</summary>
    [Fact]
    public void SecondAcquire_InThisProcess_IsRefused_NamingPidAndHost()
    {
        var dir = NewWorkDir();
        using var held = WorkDirLock.Acquire(dir, Serilog.Core.Logger.None);
        var e = Assert.Throws<WorkDirLockedException>(() => WorkDirLock.Acquire(dir, Serilog.Core.Logger.None));
        Assert.IsAssignableFrom<GflConfigException>(e);
        Assert.Equal(dir, e.WorkDir);
        Assert.StartsWith($"work dir {dir} is locked by pid {Environment.ProcessId} on host {Environment.MachineName} since ", e.Message);
        Assert.Matches(@"since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(heartbeat \d+ s ago\); another gfl train is using it$", e.Message);
    }

    /// <summary>A holder that has not written its record yet (here: a bare exclusive open) still refuses, with a
    /// message that does without the details.</summary>
    [Fact]
    public void HolderWithoutRecord_IsRefused_WithAMessageWithoutDetails()
    {
        var dir = NewWorkDir();
        using var bare = new FileStream(LockFile(dir), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        var e = Assert.Throws<WorkDirLockedException>(() => WorkDirLock.Acquire(dir, Serilog.Core.Logger.None));
        Assert.Contains("is locked by another process", e.Message);
        Assert.EndsWith("another gfl train is using it", e.Message);
    }

    /// <summary>Across processes: a <c>gfl train</c> child holds the lock (the parent is refused, the message names the
    /// child), then dies by SIGKILL; the kernel drops its flock and the next acquire takes over its record with a
    /// warning (same host, pid gone).</summary>
    [Fact]
    public void HolderInAnotherProcess_IsRefused_AndAfterSigkill_TakenOverWithWarning()
    {
        var root = NewWorkDir();
        var cfg = TrainRunTests.TinyConfig(root, epochs: 1000);
        var work = Path.Combine(root, "run");
        int childPid;
        using (var p = GflChild.Start(["train", "--config", cfg, "--work-dir", work, "--set", "train.eval_interval=0"]))
        {
            childPid = p.Id;
            Assert.True(p.WaitUntil(() => Directory.Exists(work) && WorkDirLock.ReadHolder(work)?.Pid == childPid, TimeSpan.FromMinutes(2)),
                $"gfl train exited before the test could see its lock: {p.Output}");

            var e = Assert.Throws<WorkDirLockedException>(() => WorkDirLock.Acquire(work, Serilog.Core.Logger.None));
            Assert.Contains($"is locked by pid {childPid} on host {Environment.MachineName} since ", e.Message);
            p.Kill();   // SIGKILL: no chance to release the lock itself
        }
        Assert.NotEqual(0, new FileInfo(LockFile(work)).Length);   // the dead child's record is still there

        var (log, sink) = Logger();
        using var taken = WorkDirLock.Acquire(work, log);
        var warning = Assert.Single(Warnings(sink));
        Assert.StartsWith($"taking over the lock of pid {childPid} on host {Environment.MachineName} (started ", warning);
        Assert.EndsWith("): that process is no longer running", warning);
        Assert.Equal(Environment.ProcessId, WorkDirLock.ReadHolder(work)?.Pid);
    }

    [Fact]
    public void RecordOfADeadPidOnThisHost_IsTakenOverWithWarning()
    {
        var dir = NewWorkDir();
        int dead = DeadPid();
        WriteRecord(dir, dead, Environment.MachineName, DateTime.UtcNow);
        var (log, sink) = Logger();
        using var held = WorkDirLock.Acquire(dir, log);
        var warning = Assert.Single(Warnings(sink));
        Assert.Matches($@"^taking over the lock of pid {dead} on host {Regex.Escape(Environment.MachineName)} \(started \S+Z, last heartbeat \S+Z\): that process is no longer running$", warning);
        var now = WorkDirLock.ReadHolder(dir)!;
        Assert.Equal(Environment.ProcessId, now.Pid);
        Assert.Equal(Environment.MachineName, now.Host);
    }

    /// <summary>The flock is free but the record names a running process on this host (this one stands in): it
    /// released the lock or its pid was reused, so the lock is taken without a warning.</summary>
    [Fact]
    public void RecordOfARunningPidOnThisHost_WithTheFlockFree_IsTakenOverQuietly()
    {
        var dir = NewWorkDir();
        WriteRecord(dir, Environment.ProcessId, Environment.MachineName, DateTime.UtcNow.AddDays(-3));
        var (log, sink) = Logger();
        using var held = WorkDirLock.Acquire(dir, log);
        Assert.Empty(Warnings(sink));
        Assert.True(DateTime.UtcNow - WorkDirLock.ReadHolder(dir)!.StartedUtc < TimeSpan.FromMinutes(1));
    }

    [Fact]
    public void OtherHostWithAnOldHeartbeat_IsTakenOverWithWarning()
    {
        var dir = NewWorkDir();
        WriteRecord(dir, 4242, "some-other-host", DateTime.UtcNow.AddMinutes(-11));
        var (log, sink) = Logger();
        using var held = WorkDirLock.Acquire(dir, log);
        var warning = Assert.Single(Warnings(sink));
        Assert.StartsWith("taking over the lock of pid 4242 on host some-other-host (started ", warning);
        Assert.Matches(@": its heartbeat is 6\d\d s old \(stale after 600 s\)$", warning);
        Assert.Equal(Environment.ProcessId, WorkDirLock.ReadHolder(dir)!.Pid);
    }

    /// <summary>The flock was ours, yet another host's heartbeat is fresh: that host's locks do not reach this one
    /// (some NFS setups), so the record is the only sign of a live run. Refused, the record left as it was.</summary>
    [Fact]
    public void OtherHostWithAFreshHeartbeat_IsRefused_AndItsRecordKept()
    {
        var dir = NewWorkDir();
        WriteRecord(dir, 4242, "some-other-host", DateTime.UtcNow.AddMinutes(-2));
        var before = File.ReadAllText(LockFile(dir));
        var e = Assert.Throws<WorkDirLockedException>(() => WorkDirLock.Acquire(dir, Serilog.Core.Logger.None));
        Assert.StartsWith($"work dir {dir} is locked by pid 4242 on host some-other-host since ", e.Message);
        Assert.Matches(@"\(heartbeat 12\d s ago\); another gfl train is using it; ", e.Message);
        Assert.Equal(before, File.ReadAllText(LockFile(dir)));
        // The stale timeout is a parameter: with a shorter one the same record is taken over.
        using var held = WorkDirLock.Acquire(dir, Serilog.Core.Logger.None, staleAfter: TimeSpan.FromMinutes(1));
        Assert.Equal(Environment.ProcessId, WorkDirLock.ReadHolder(dir)!.Pid);
    }

    [Fact]
    public void Release_EmptiesTheFile_AndTheNextAcquireSucceedsWithoutWarning()
    {
        var dir = NewWorkDir();
        var first = WorkDirLock.Acquire(dir, Serilog.Core.Logger.None);
        Assert.NotEqual(0, new FileInfo(LockFile(dir)).Length);
        first.Dispose();
        first.Dispose();   // idempotent
        Assert.True(File.Exists(LockFile(dir)));   // never deleted
        Assert.Equal(0, new FileInfo(LockFile(dir)).Length);

        var (log, sink) = Logger();
        using var second = WorkDirLock.Acquire(dir, log);
        Assert.Empty(sink.Messages());
    }

    [Fact]
    public void Heartbeat_RewritesTheRecord()
    {
        var dir = NewWorkDir();
        using var held = WorkDirLock.Acquire(dir, Serilog.Core.Logger.None, heartbeatInterval: TimeSpan.FromMilliseconds(50));
        var first = WorkDirLock.ReadHolder(dir)!;
        Assert.Equal(Environment.ProcessId, first.Pid);
        Assert.Equal(first.StartedUtc, first.HeartbeatUtc);
        Assert.False(string.IsNullOrEmpty(first.GflVersion));
        var deadline = DateTime.UtcNow.AddSeconds(10);
        WorkDirLock.Holder? later = first;
        while (DateTime.UtcNow < deadline && later?.HeartbeatUtc == first.HeartbeatUtc)
        {
            Thread.Sleep(20);
            later = WorkDirLock.ReadHolder(dir) ?? later;
        }
        Assert.NotNull(later);
        Assert.True(later.HeartbeatUtc > first.HeartbeatUtc, "the heartbeat was not rewritten within 10 s");
        Assert.Equal(first.StartedUtc, later.StartedUtc);
        Assert.Equal(first.Pid, later.Pid);
    }
}
