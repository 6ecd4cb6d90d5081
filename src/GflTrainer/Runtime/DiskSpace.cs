using System.Runtime.InteropServices;

namespace GflTrainer.Runtime;

/// <summary>Free space, out-of-space errors and durable renames: what a checkpoint write needs so that a full disk
/// or a power loss never leaves a half-written checkpoint under a final name.</summary>
public static class DiskSpace
{
    const int Enospc = 28, Edquot = 122;   // Linux errno values; .NET's IOException.HResult carries the raw errno on Unix

    /// <summary>Bytes available to this user on the file system holding <paramref name="path"/> (statfs f_bavail), or
    /// -1 when it cannot be read.</summary>
    public static long FreeBytes(string path)
    {
        try
        {
            var existing = Path.GetFullPath(path);
            while (!Directory.Exists(existing) && Path.GetDirectoryName(existing) is { } parent) existing = parent;
            return new DriveInfo(existing).AvailableFreeSpace;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException) { return -1; }
    }

    /// <summary>Whether <paramref name="e"/> is the file system being full or over quota.</summary>
    public static bool IsOutOfSpace(Exception e) =>
        e is IOException io && (io.HResult is Enospc or Edquot
            || io.Message.Contains("No space left on device", StringComparison.Ordinal)
            || io.Message.Contains("Disk quota exceeded", StringComparison.Ordinal));

    /// <summary>Throws <see cref="DiskFullException"/> before a write of about <paramref name="neededBytes"/> into
    /// <paramref name="directory"/> when less is free (unknown free space passes: the write itself will tell).</summary>
    public static void Require(string directory, long neededBytes, string what)
    {
        long free = FreeBytes(directory);
        if (free >= 0 && free < neededBytes)
            throw new DiskFullException(directory, $"{what} needs ~{Mb(neededBytes)} MB, {Mb(free)} MB free", neededBytes, free);
    }

    /// <summary>The exception to raise for <paramref name="e"/> from writing <paramref name="path"/>: a
    /// <see cref="DiskFullException"/> with the space figures when the disk is full, else <paramref name="e"/> itself.</summary>
    public static Exception Describe(Exception e, string path, long neededBytes)
    {
        if (!IsOutOfSpace(e)) return e;
        long free = FreeBytes(path);
        var needed = neededBytes > 0 ? $"needed ~{Mb(neededBytes)} MB, " : "";
        return new DiskFullException(path, $"{needed}{(free >= 0 ? $"{Mb(free)} MB free" : "free space unknown")} ({e.Message})",
            neededBytes, free, e);
    }

    /// <summary>Makes the entries of <paramref name="directory"/> (a rename into it, a new file) durable: fsync on the
    /// directory itself, which POSIX requires after a rename for it to survive a crash. No-op outside Linux/macOS.</summary>
    public static void SyncDirectory(string directory)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS()) return;
        int fd = Open(directory, 0 /* O_RDONLY */);
        if (fd < 0) throw new IOException($"cannot open directory {directory} to sync it (errno {Marshal.GetLastPInvokeError()})");
        try
        {
            if (Fsync(fd) != 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                throw new IOException($"fsync of directory {directory} failed (errno {errno})", errno);
            }
        }
        finally { Close(fd); }
    }

    static long Mb(long bytes) => (bytes + (1 << 20) - 1) >> 20;

    [DllImport("libc", EntryPoint = "open", SetLastError = true)] static extern int Open(string path, int flags);
    [DllImport("libc", EntryPoint = "fsync", SetLastError = true)] static extern int Fsync(int fd);
    [DllImport("libc", EntryPoint = "close")] static extern int Close(int fd);
}
