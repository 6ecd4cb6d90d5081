namespace GflTrainer.Runtime.Native;

/// <summary>
/// The one place where gfl prepares libtorch for work, after its native library is loaded and before the first
/// operation: the CPU cache-table workaround (<see cref="OneDnnCacheWorkaround"/>) must run before oneDNN plans any
/// primitive; then libtorch's one-time start-up warnings are routed to the log (<see cref="LibtorchWarnings"/>).
/// Called by <see cref="DeviceSelector.Resolve"/>, which every command that uses tensors calls first, and
/// by the test assembly's module initialiser. Idempotent and thread-safe.
/// </summary>
public static class TorchRuntime
{
    private static readonly object Gate = new();
    private static CpuWorkaroundReport? _cpu;

    /// <summary>What the CPU workaround found and did in this process (runs it if it has not run).</summary>
    public static CpuWorkaroundReport Cpu
    {
        get
        {
            EnsureInitialized();
            return _cpu!;
        }
    }

    /// <param name="log">receives libtorch's start-up warnings (the first caller's logger; the static Serilog logger
    /// when none).</param>
    public static void EnsureInitialized(Serilog.ILogger? log = null)
    {
        if (Volatile.Read(ref _cpu) is not null) return;
        lock (Gate)
        {
            if (_cpu is not null) return;
            var cpu = OneDnnCacheWorkaround.Apply(log: log);
            LibtorchWarnings.InitializeQuietly(log);
            Volatile.Write(ref _cpu, cpu);
        }
    }
}
