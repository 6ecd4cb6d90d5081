using GflTrainer.Runtime;

namespace GflTrainer.Training;

/// <summary><c>train.memory_limit_fraction</c>: stops a run between iterations, after saving <c>last</c>, when its
/// cgroup's anonymous memory passes that fraction of the cgroup limit, instead of letting the OOM killer end it with
/// SIGKILL mid-iteration and no message. Checked after every iteration (one small file read).</summary>
internal sealed class MemoryGuard(CgroupMemory cgroup, double fraction)
{
    public CgroupMemory Cgroup => cgroup;

    /// <summary>The reason to stop, or null while memory is below the threshold.</summary>
    public string? Check()
    {
        long used = cgroup.UsageBytes();
        if (used <= fraction * cgroup.LimitBytes) return null;
        return $"memory: {used >> 20} MB of the cgroup limit {cgroup.LimitBytes >> 20} MB in use " +
               $"({100.0 * used / cgroup.LimitBytes:F0} % > train.memory_limit_fraction {fraction})";
    }
}

/// <summary>The run stopped near its cgroup's memory limit; <c>last</c> was saved first.</summary>
public sealed class MemoryLimitException(string message) : GflRuntimeException(message);
