using GflTrainer.Config;
using GflTrainer.Runtime.Distributed;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Runtime;

/// <summary>Which launcher started the process and where it placed it, from the variables each launcher sets.</summary>
public sealed class LaunchEnvironmentTests
{
    static LaunchEnvironment Detect(params (string Key, string Value)[] env) =>
        LaunchEnvironment.Detect(env.ToDictionary(e => e.Key, e => e.Value));

    [Fact]
    public void NoLauncher_IsOneProcess() => Assert.Equal(LaunchEnvironment.Single, Detect(("HOME", "/root")));

    [Fact]
    public void Torchrun_RankWorldLocalAndMaster()
    {
        var e = Detect(("RANK", "5"), ("WORLD_SIZE", "8"), ("LOCAL_RANK", "1"), ("LOCAL_WORLD_SIZE", "4"),
            ("MASTER_ADDR", "node01"), ("MASTER_PORT", "29500"), ("OMPI_COMM_WORLD_SIZE", "2"), ("OMPI_COMM_WORLD_RANK", "0"));
        Assert.Equal(new LaunchEnvironment(Launcher.Torchrun, 5, 8, 1, 4, "node01", 29500), e);   // torchrun wins
    }

    [Fact]
    public void OpenMpi_FromOmpiVariables()
    {
        var e = Detect(("OMPI_COMM_WORLD_RANK", "3"), ("OMPI_COMM_WORLD_SIZE", "4"), ("OMPI_COMM_WORLD_LOCAL_RANK", "1"),
            ("OMPI_COMM_WORLD_LOCAL_SIZE", "2"), ("SLURM_PROCID", "0"), ("SLURM_STEP_NUM_TASKS", "1"));
        Assert.Equal(new LaunchEnvironment(Launcher.OpenMpi, 3, 4, 1, 2), e);
    }

    [Fact]
    public void SlurmStep_IsDistributed_ButAnSbatchScriptAloneIsOneProcess()
    {
        var step = Detect(("SLURM_PROCID", "6"), ("SLURM_STEP_NUM_TASKS", "8"), ("SLURM_LOCALID", "2"), ("SLURM_NODEID", "1"),
            ("SLURM_STEP_TASKS_PER_NODE", "4(x2)"), ("SLURM_STEP_NODELIST", "gpu[03-04]"), ("SLURM_NTASKS", "8"));
        Assert.Equal(new LaunchEnvironment(Launcher.Slurm, 6, 8, 2, 4, "gpu03"), step);
        // The batch script itself: SLURM_PROCID 0 and the job's task count, but no step.
        Assert.Equal(LaunchEnvironment.Single, Detect(("SLURM_PROCID", "0"), ("SLURM_NTASKS", "8"), ("SLURM_JOB_ID", "77")));
    }

    [Fact]
    public void Pmi_OfMpichOrIntelMpi()
    {
        Assert.Equal(new LaunchEnvironment(Launcher.Pmi, 1, 2, 1, 2), Detect(("PMI_RANK", "1"), ("PMI_SIZE", "2"), ("MPI_LOCALRANKID", "1")));
    }

    [Theory]
    [InlineData("4(x2),3", 0, 4)]
    [InlineData("4(x2),3", 2, 3)]
    [InlineData("2", 0, 2)]
    [InlineData("2", 1, null)]
    [InlineData("garbage", 0, null)]
    public void SlurmTasksPerNode(string value, int node, int? expected) => Assert.Equal(expected, LaunchEnvironment.LocalTasks(value, node));

    [Theory]
    [InlineData("gpu[03-05,07],cpu1", "gpu03")]
    [InlineData("node7", "node7")]
    [InlineData("a[1,4]", "a1")]
    public void SlurmFirstHost(string list, string first) => Assert.Equal(first, LaunchEnvironment.FirstHost(list));

    [Theory]
    [InlineData("RANK", "x", "RANK='x' is not an integer")]
    [InlineData("RANK", "8", "RANK=8 is not below the world size 8")]
    public void BadVariables_AreNamed(string key, string value, string message)
    {
        var env = new Dictionary<string, string> { ["RANK"] = "0", ["WORLD_SIZE"] = "8" };
        env[key] = value;
        var e = Assert.Throws<GflConfigException>(() => LaunchEnvironment.Detect(env));
        Assert.Contains(message, e.Message);
        Assert.Equal(key, e.Key);
    }

    [Fact]
    public void Backend_AutoIsMpiOnCpu_NoneForOneProcess_AndContradictionsAreRefused()
    {
        var two = new LaunchEnvironment(Launcher.OpenMpi, 0, 2, 0, 2);
        Assert.Equal(DistBackend.Mpi, DataParallel.Resolve(DistBackend.Auto, two, CPU));
        Assert.Equal(DistBackend.Nccl, DataParallel.Resolve(DistBackend.Auto, two, new Device(TorchSharp.DeviceType.CUDA, 0)));
        Assert.Equal(DistBackend.None, DataParallel.Resolve(DistBackend.Auto, LaunchEnvironment.Single, CPU));
        Assert.Contains("needs CUDA devices", Assert.Throws<GflConfigException>(() => DataParallel.Resolve(DistBackend.Nccl, two, CPU)).Message);
        Assert.Contains("every process would train alone", Assert.Throws<GflConfigException>(() => DataParallel.Resolve(DistBackend.None, two, CPU)).Message);
    }
}
