using GflTrainer.Config;
using Serilog;
using TorchSharp;

namespace GflTrainer.Runtime.Distributed;

/// <summary>This process's part in a data-parallel run: its collective (rank, world size), the device of its local
/// rank, and the CPU threads it may use. Built once per process from the launcher's variables and
/// <c>train.dist.backend</c>.</summary>
public sealed class DataParallel : IDisposable
{
    public LaunchEnvironment Launch { get; }
    public DistBackend Backend { get; }
    public ICollective Collective { get; }
    public torch.Device Device { get; }
    public int Rank => Collective.Rank;
    public int WorldSize => Collective.WorldSize;
    public bool IsMain => Collective.Rank == 0;

    DataParallel(LaunchEnvironment launch, DistBackend backend, ICollective collective, torch.Device device)
    {
        Launch = launch; Backend = backend; Collective = collective; Device = device;
    }

    /// <summary>One process, no launcher.</summary>
    public static DataParallel Single(torch.Device device) =>
        new(LaunchEnvironment.Single, DistBackend.None, SingleProcessCollective.Instance, device);

    /// <summary>The backend <paramref name="configured"/> means for this launch and device.</summary>
    public static DistBackend Resolve(DistBackend configured, LaunchEnvironment launch, torch.Device device)
    {
        bool cuda = device.type == DeviceType.CUDA;
        switch (configured)
        {
            case DistBackend.None when launch.IsDistributed:
                throw new GflConfigException($"train.dist.backend none, but {launch}: every process would train alone on the same " +
                    "work dir; use auto/mpi/nccl, or start one process") { Key = "train.dist.backend" };
            case DistBackend.Nccl when !cuda:
                throw new GflConfigException($"train.dist.backend nccl needs CUDA devices (this run uses {device}); use mpi on the CPU")
                    { Key = "train.dist.backend" };
            case DistBackend.Auto:
                return !launch.IsDistributed ? DistBackend.None : cuda ? DistBackend.Nccl : DistBackend.Mpi;
        }
        return configured;
    }

    /// <param name="device">the device the run asked for (<c>--device</c>/<c>runtime.device</c>); CUDA becomes the local
    /// rank's GPU.</param>
    public static DataParallel Create(DistBackend configured, LaunchEnvironment launch, torch.Device device, ILogger log)
    {
        var backend = Resolve(configured, launch, device);
        if (backend == DistBackend.None && !launch.IsDistributed) return Single(device);
        if (device.type == DeviceType.CUDA)
        {
            int visible = torch.cuda.device_count();
            if (launch.LocalRank >= visible)
                throw new GflConfigException($"local rank {launch.LocalRank} has no GPU: {visible} visible on this node; start at " +
                    "most one process per GPU") { Key = "train.dist.backend" };
            device = new torch.Device(DeviceType.CUDA, launch.LocalRank);
        }
        else
            ShareCpuCores(launch, log);
        ICollective collective = backend switch
        {
            DistBackend.Mpi => new MpiCollective(launch),
            DistBackend.Nccl => new NcclCollective(launch with { MasterAddress = launch.MasterAddress ?? "127.0.0.1" }, device,
                TimeSpan.FromSeconds(600)),
            _ => SingleProcessCollective.Instance,
        };
        log.Information("data parallel: {Launch}, backend {Backend}, device {Device}", launch.ToString(), backend.ToString().ToLowerInvariant(), device.ToString());
        return new DataParallel(launch, backend, collective, device);
    }

    /// <summary>Ranks on one node split its cores (as torchrun sets OMP_NUM_THREADS): N ranks of N threads each on N
    /// cores run N² threads and thrash. The count starts from the cores this process may use (a cgroup quota or an
    /// mpirun binding makes it smaller than the machine); an explicit OMP_NUM_THREADS is left alone.</summary>
    static void ShareCpuCores(LaunchEnvironment launch, ILogger log)
    {
        if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable("OMP_NUM_THREADS"))) return;
        int threads = Math.Max(1, Environment.ProcessorCount / launch.LocalWorldSize);
        torch.set_num_threads(threads);
        log.Debug("{Threads} torch threads for this rank ({Cores} cores, {Local} local ranks)", threads, Environment.ProcessorCount, launch.LocalWorldSize);
    }

    bool _completed;

    /// <summary>The run ended the same way on every rank (finished, or stopped together): <see cref="Dispose"/> may
    /// finalize. After a failure of this rank alone the others may be waiting in a collective, where MPI_Finalize would
    /// wait too; the process then exits without it, which makes mpirun end every rank of the job.</summary>
    public void Complete() => _completed = true;

    public void Dispose()
    {
        if (_completed) Collective.Dispose();
    }
}
