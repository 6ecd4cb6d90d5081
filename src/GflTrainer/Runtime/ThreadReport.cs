namespace GflTrainer.Runtime;

/// <summary>Every OS thread of this process as the kernel sees it: name, state and the kernel function it sleeps in
/// (<c>/proc/self/task/TID/{comm,stat,wchan}</c>). A thread blocked on a stalled NFS read shows up as <c>D</c> in an
/// <c>nfs_*</c>/<c>rpc_*</c> function, one waiting on a lock as <c>S</c> in <c>futex_wait_queue</c>. The managed side
/// of the same threads is <see cref="ManagedStacks"/>.</summary>
public static class ThreadReport
{
    public static IReadOnlyList<string> Lines()
    {
        var lines = new List<string>();
        if (!OperatingSystem.IsLinux() || !Directory.Exists("/proc/self/task")) return ["(thread states need Linux /proc)"];
        foreach (var dir in Directory.EnumerateDirectories("/proc/self/task").OrderBy(d => int.TryParse(Path.GetFileName(d), out var t) ? t : 0))
        {
            string Read(string file)
            {
                try { return File.ReadAllText(Path.Combine(dir, file)).Trim(); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return "?"; }
            }
            var stat = Read("stat");
            // stat: "tid (comm) S ..." where comm may hold spaces or parentheses: the state follows the last ')'.
            int close = stat.LastIndexOf(')');
            var state = close >= 0 && close + 2 < stat.Length ? stat[(close + 2)..].Split(' ')[0] : "?";
            var wchan = Read("wchan");
            lines.Add($"thread {Path.GetFileName(dir)} '{Read("comm")}' state {state}{(wchan is "0" or "?" or "" ? "" : $" in {wchan}")}");
        }
        return lines;
    }
}
