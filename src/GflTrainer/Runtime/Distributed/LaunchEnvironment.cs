using System.Collections;

namespace GflTrainer.Runtime.Distributed;

/// <summary>Which launcher started this process.</summary>
public enum Launcher
{
    /// <summary>No launcher: one process.</summary>
    None,
    /// <summary>torchrun / torch.distributed.run (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT).</summary>
    Torchrun,
    /// <summary>Open MPI's mpirun/mpiexec (OMPI_COMM_WORLD_*).</summary>
    OpenMpi,
    /// <summary>An srun job step of Slurm (SLURM_PROCID, SLURM_STEP_NUM_TASKS, SLURM_LOCALID).</summary>
    Slurm,
    /// <summary>A PMI launcher of MPICH or Intel MPI (PMI_RANK, PMI_SIZE).</summary>
    Pmi,
}

/// <summary>This process's place in a multi-process job, read from the variables its launcher sets. One process per
/// device: <see cref="LocalRank"/> picks the GPU. <see cref="MasterAddress"/>/<see cref="MasterPort"/> (torchrun, or set by
/// hand under Slurm) is where rank 0 hands out the NCCL id.</summary>
public sealed record LaunchEnvironment(Launcher Launcher, int Rank, int WorldSize, int LocalRank, int LocalWorldSize,
    string? MasterAddress = null, int? MasterPort = null)
{
    public static readonly LaunchEnvironment Single = new(Launcher.None, 0, 1, 0, 1);

    public bool IsDistributed => WorldSize > 1;

    /// <summary>The variables of this process.</summary>
    public static LaunchEnvironment Detect() => Detect(Environment.GetEnvironmentVariables().Cast<DictionaryEntry>()
        .ToDictionary(e => (string)e.Key, e => e.Value as string ?? ""));

    /// <summary>From <paramref name="env"/>. torchrun's variables win (they are explicit, and torchrun may itself run in
    /// an srun step or an MPI job), then Open MPI's, then an srun step's, then PMI's. Inside an sbatch script without srun
    /// SLURM_PROCID is 0 and SLURM_NTASKS counts the tasks the job may start: that is one process, and only a step
    /// (SLURM_STEP_NUM_TASKS) is read as a job of several.</summary>
    public static LaunchEnvironment Detect(IReadOnlyDictionary<string, string> env)
    {
        string? Get(string name) => env.TryGetValue(name, out var v) && !string.IsNullOrWhiteSpace(v) ? v.Trim() : null;
        int Int(string name, int? fallback = null, int min = 0)
        {
            var raw = Get(name);
            if (raw is null)
                return fallback ?? throw new GflConfigException($"environment variable {name} is not set (the launcher sets it)") { Key = name };
            if (!int.TryParse(raw, out var v) || v < min)
                throw new GflConfigException($"environment variable {name}='{raw}' is not an integer >= {min}") { Key = name };
            return v;
        }
        LaunchEnvironment Checked(LaunchEnvironment e, string rankVar)
        {
            if (e.Rank >= e.WorldSize)
                throw new GflConfigException($"{rankVar}={e.Rank} is not below the world size {e.WorldSize}") { Key = rankVar };
            if (e.LocalRank >= e.LocalWorldSize)
                throw new GflConfigException($"local rank {e.LocalRank} is not below the local world size {e.LocalWorldSize}") { Key = rankVar };
            return e;
        }

        if (Get("RANK") is not null && Get("WORLD_SIZE") is not null)
        {
            int world = Int("WORLD_SIZE", min: 1);
            int? port = Get("MASTER_PORT") is null ? null : Int("MASTER_PORT", min: 1);
            return Checked(new LaunchEnvironment(Launcher.Torchrun, Int("RANK"), world, Int("LOCAL_RANK", 0),
                Int("LOCAL_WORLD_SIZE", world, min: 1), Get("MASTER_ADDR"), port), "RANK");
        }
        if (Get("OMPI_COMM_WORLD_SIZE") is not null)
        {
            int world = Int("OMPI_COMM_WORLD_SIZE", min: 1);
            return Checked(new LaunchEnvironment(Launcher.OpenMpi, Int("OMPI_COMM_WORLD_RANK"), world,
                Int("OMPI_COMM_WORLD_LOCAL_RANK", 0), Int("OMPI_COMM_WORLD_LOCAL_SIZE", world, min: 1),
                Get("MASTER_ADDR"), Get("MASTER_PORT") is null ? null : Int("MASTER_PORT", min: 1)), "OMPI_COMM_WORLD_RANK");
        }
        if (Get("SLURM_STEP_NUM_TASKS") is not null && Get("SLURM_PROCID") is not null)
        {
            int world = Int("SLURM_STEP_NUM_TASKS", min: 1);
            return Checked(new LaunchEnvironment(Launcher.Slurm, Int("SLURM_PROCID"), world, Int("SLURM_LOCALID", 0),
                LocalTasks(Get("SLURM_STEP_TASKS_PER_NODE"), Get("SLURM_NODEID") is null ? 0 : Int("SLURM_NODEID")) ?? world,
                Get("MASTER_ADDR") ?? FirstHost(Get("SLURM_STEP_NODELIST") ?? Get("SLURM_NODELIST")),
                Get("MASTER_PORT") is null ? null : Int("MASTER_PORT", min: 1)), "SLURM_PROCID");
        }
        if (Get("PMI_SIZE") is not null && Get("PMI_RANK") is not null)
        {
            int world = Int("PMI_SIZE", min: 1);
            return Checked(new LaunchEnvironment(Launcher.Pmi, Int("PMI_RANK"), world, Int("MPI_LOCALRANKID", 0),
                Int("MPI_LOCALNRANKS", world, min: 1), Get("MASTER_ADDR"), Get("MASTER_PORT") is null ? null : Int("MASTER_PORT", min: 1)), "PMI_RANK");
        }
        return Single;
    }

    /// <summary>Tasks on node <paramref name="node"/> from Slurm's compressed list, e.g. "4(x2),3" = 4, 4, 3.</summary>
    internal static int? LocalTasks(string? tasksPerNode, int node)
    {
        if (tasksPerNode is null) return null;
        var perNode = new List<int>();
        foreach (var part in tasksPerNode.Split(','))
        {
            var m = System.Text.RegularExpressions.Regex.Match(part.Trim(), @"^(\d+)(?:\(x(\d+)\))?$");
            if (!m.Success) return null;
            perNode.AddRange(Enumerable.Repeat(int.Parse(m.Groups[1].Value), m.Groups[2].Success ? int.Parse(m.Groups[2].Value) : 1));
        }
        return node < perNode.Count ? perNode[node] : null;
    }

    /// <summary>The first host of a Slurm node list ("gpu[03-05,07],cpu1" -> "gpu03").</summary>
    internal static string? FirstHost(string? nodeList)
    {
        if (string.IsNullOrEmpty(nodeList)) return null;
        var m = System.Text.RegularExpressions.Regex.Match(nodeList, @"^([^,\[]+)(?:\[([^\]]+)\])?");
        if (!m.Success) return null;
        if (!m.Groups[2].Success) return m.Groups[1].Value;
        var first = m.Groups[2].Value.Split(',')[0].Split('-')[0];
        return m.Groups[1].Value + first;
    }

    public override string ToString() => Launcher == Launcher.None ? "one process"
        : $"{Launcher}: rank {Rank} of {WorldSize}, local rank {LocalRank} of {LocalWorldSize}";
}
