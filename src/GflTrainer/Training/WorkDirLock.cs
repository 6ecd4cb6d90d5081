using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Win32.SafeHandles;
using Serilog;

namespace GflTrainer.Training;

/// <summary>
/// One <c>gfl train</c> per work directory. The lock is <c>.gfl.lock</c> opened with <see cref="FileShare.None"/>,
/// which .NET on Unix turns into <c>flock(LOCK_EX|LOCK_NB)</c>: a second opener fails at once, and the kernel drops the
/// lock when the holder dies, SIGKILL included. While held, the file names the holder (JSON: pid, host, start,
/// heartbeat refreshed every 30 s) for the error message, and for file systems whose locks do not reach other hosts
/// (some NFS setups), where a fresh heartbeat from another host is the only sign of a live holder.
/// The file is never deleted: a waiter that had it open would lock the unlinked inode while a third process
/// creates and locks a new one.
/// </summary>
public sealed class WorkDirLock : IDisposable
{
    public const string FileName = ".gfl.lock";
    public static readonly TimeSpan DefaultHeartbeatInterval = TimeSpan.FromSeconds(30);
    public static readonly TimeSpan DefaultStaleAfter = TimeSpan.FromMinutes(10);

    /// <summary>What the lock file says about its holder.</summary>
    public sealed record Holder(
        [property: JsonPropertyName("pid")] int Pid,
        [property: JsonPropertyName("host")] string Host,
        [property: JsonPropertyName("started_utc")] DateTime StartedUtc,
        [property: JsonPropertyName("heartbeat_utc")] DateTime HeartbeatUtc,
        [property: JsonPropertyName("gfl_version")] string? GflVersion);

    // errno of flock's "held by someone else", which .NET passes on as the IOException's HResult.
    private const int EWouldBlock = 11;

    private readonly FileStream _stream;
    private readonly ILogger _log;
    private readonly Timer _heartbeat;
    private readonly object _gate = new();
    private Holder _holder;
    private bool _disposed, _heartbeatFailed;

    /// <summary>The lock file.</summary>
    public string Path { get; }

    private WorkDirLock(string path, FileStream stream, Holder holder, ILogger log, TimeSpan heartbeatInterval)
    {
        Path = path;
        _stream = stream;
        _holder = holder;
        _log = log;
        Write(holder);
        _heartbeat = new Timer(_ => Beat(), null, heartbeatInterval, heartbeatInterval);
    }

    /// <summary>Locks <paramref name="workDir"/> (which must exist) for this process, taking over the lock of a holder
    /// that is gone, or throws <see cref="WorkDirLockedException"/> when another run holds it.</summary>
    /// <param name="heartbeatInterval">how often the heartbeat is rewritten (default 30 s).</param>
    /// <param name="staleAfter">how old another host's heartbeat must be before its lock is taken over (default 10 min).</param>
    public static WorkDirLock Acquire(string workDir, ILogger log, TimeSpan? heartbeatInterval = null, TimeSpan? staleAfter = null)
    {
        var path = System.IO.Path.Combine(workDir, FileName);
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e) when (e.HResult == EWouldBlock)
        {
            throw new WorkDirLockedException(workDir, LockedMessage(workDir, Parse(ReadUnlocked(path)), null));
        }
        try
        {
            var previous = Parse(ReadAll(stream));
            var stale = staleAfter ?? DefaultStaleAfter;
            if (previous is not null && TakeOverReason(previous, stale) is { } decision)
            {
                if (!decision.TakeOver)
                    throw new WorkDirLockedException(workDir, LockedMessage(workDir, previous,
                        $"; that host's locks do not reach this one (its heartbeat would have to be {stale.TotalSeconds:F0} s old to take over)"));
                log.Warning("taking over the lock of pid {Pid} on host {Host:l} (started {Started:l}, last heartbeat {Heartbeat:l}): {Reason:l}",
                    previous.Pid, previous.Host, Iso(previous.StartedUtc), Iso(previous.HeartbeatUtc), decision.Reason);
            }
            else if (previous is not null)
                log.Debug("{Lock:l}: taking over from pid {Pid}, which is running but no longer holds the lock (released, or a reused pid)",
                    path, previous.Pid);
            var now = DateTime.UtcNow;
            var self = new Holder(Environment.ProcessId, Environment.MachineName, now, now, GflVersion());
            return new WorkDirLock(path, stream, self, log, heartbeatInterval ?? DefaultHeartbeatInterval);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <summary>Why a previous holder's record may be overwritten now that the flock is ours: (true, reason) to take
    /// over with a warning, (false, _) to refuse, null when it is not worth a warning (same host, pid still running:
    /// it released the lock or the pid was reused).</summary>
    private static (bool TakeOver, string Reason)? TakeOverReason(Holder previous, TimeSpan staleAfter)
    {
        if (SameHost(previous.Host))
            return IsRunning(previous.Pid) ? null : (true, "that process is no longer running");
        var age = DateTime.UtcNow - previous.HeartbeatUtc;
        return age > staleAfter
            ? (true, $"its heartbeat is {age.TotalSeconds:F0} s old (stale after {staleAfter.TotalSeconds:F0} s)")
            : (false, "");
    }

    /// <summary>The record in <paramref name="workDir"/>'s lock file, held or not; null when there is none.</summary>
    internal static Holder? ReadHolder(string workDir) => Parse(ReadUnlocked(System.IO.Path.Combine(workDir, FileName)));

    private static bool SameHost(string host) => string.Equals(host, Environment.MachineName, StringComparison.OrdinalIgnoreCase);

    private static bool IsRunning(int pid)
    {
        if (OperatingSystem.IsLinux()) return Directory.Exists($"/proc/{pid}");
        try
        {
            using var p = System.Diagnostics.Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (ArgumentException) { return false; }
        catch (InvalidOperationException) { return false; }
    }

    private static string LockedMessage(string workDir, Holder? holder, string? why)
    {
        const string tail = "another gfl train is using it";
        if (holder is null)
            return $"work dir {workDir} is locked by another process (its {FileName} names no holder yet); {tail}";
        var ago = Math.Max(0, (DateTime.UtcNow - holder.HeartbeatUtc).TotalSeconds);
        return $"work dir {workDir} is locked by pid {holder.Pid} on host {holder.Host} since {Iso(holder.StartedUtc)} " +
            $"(heartbeat {ago:F0} s ago); {tail}{why}";
    }

    private static string Iso(DateTime utc) => utc.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);

    private static string? GflVersion() =>
        typeof(WorkDirLock).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0];

    /// <summary>The holder's record, or null for an empty or unreadable file (a lock released cleanly, or one whose
    /// holder died between creating and writing it).</summary>
    private static Holder? Parse(string? json)
    {
        if (string.IsNullOrWhiteSpace(json)) return null;
        try
        {
            var h = JsonSerializer.Deserialize<Holder>(json);
            return h is { Host: not null } ? h with { StartedUtc = AsUtc(h.StartedUtc), HeartbeatUtc = AsUtc(h.HeartbeatUtc) } : null;
        }
        catch (JsonException) { return null; }
    }

    private static DateTime AsUtc(DateTime t) => t.Kind == DateTimeKind.Local ? t.ToUniversalTime() : DateTime.SpecifyKind(t, DateTimeKind.Utc);

    private static string ReadAll(FileStream stream)
    {
        stream.Position = 0;
        return new StreamReader(stream, Encoding.UTF8, leaveOpen: true).ReadToEnd();
    }

    [DllImport("libc", EntryPoint = "open", SetLastError = true)]
    private static extern int Open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

    private const int ORdOnly = 0, OCloExec = 0x80000;

    /// <summary>The lock file's text while another process holds it. Every .NET open of the file asks for a flock
    /// (LOCK_SH for readers, whatever FileShare says), which the holder's LOCK_EX refuses, so this opens it with
    /// libc directly. Null when it cannot be read: the message then does without the holder's details.</summary>
    private static string? ReadUnlocked(string path)
    {
        try
        {
            int fd = Open(path, ORdOnly | OCloExec);
            if (fd < 0) return null;
            using var handle = new SafeFileHandle(fd, ownsHandle: true);
            var buffer = new byte[64 * 1024];
            int n = RandomAccess.Read(handle, buffer, 0);
            return Encoding.UTF8.GetString(buffer, 0, n);
        }
        catch (Exception e) when (e is IOException or DllNotFoundException or EntryPointNotFoundException) { return null; }
    }

    /// <summary>Rewrites the record in place through the held stream: new content first, then the truncation, so a
    /// reader never sees an empty file while the lock is held (at worst a longer record's tail, which it parses as
    /// unreadable).</summary>
    private void Write(Holder holder)
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(holder);
        _stream.Position = 0;
        _stream.Write(bytes);
        _stream.SetLength(bytes.Length);
        _stream.Flush();
    }

    private void Beat()
    {
        lock (_gate)
        {
            if (_disposed) return;
            try
            {
                _holder = _holder with { HeartbeatUtc = DateTime.UtcNow };
                Write(_holder);
            }
            catch (IOException e)
            {
                // The lock itself holds regardless; only other hosts' view of it goes stale. Said once, not every 30 s.
                if (!_heartbeatFailed) _log.Warning("{Lock:l}: cannot update the heartbeat: {Error:l}", Path, e.Message);
                _heartbeatFailed = true;
            }
        }
    }

    /// <summary>Empties the file (the next run sees a clean release) and closes it, which drops the flock.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            _heartbeat.Dispose();
            try
            {
                _stream.SetLength(0);
                _stream.Flush();
            }
            // Not worth failing the run for: a record left behind names this pid, which the next run on this host
            // finds not running (or not holding the flock) and takes over.
            catch (IOException) { }
            finally { _stream.Dispose(); }
        }
    }
}
