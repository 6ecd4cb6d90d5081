using static TorchSharp.torch;

namespace GflTrainer.Runtime;

/// <summary>The collective operations a data-parallel run needs (torch.distributed's all_reduce, broadcast,
/// all_gather_object and barrier, as DDP and mmdetection use them): gradients and the loss normalisers are averaged
/// over the ranks, the starting weights are broadcast from rank 0, and evaluation results are gathered.
/// <see cref="SingleProcessCollective"/> is the one-process case; <see cref="Distributed.MpiCollective"/> binds Open MPI.
/// Every rank must make the same calls in the same order.</summary>
public interface ICollective : IDisposable
{
    /// <summary>This process's rank, 0-based; rank 0 writes logs and checkpoints.</summary>
    int Rank { get; }

    /// <summary>Number of processes taking part.</summary>
    int WorldSize { get; }

    /// <summary>In place: every rank ends with the element-wise mean over the ranks of each tensor.</summary>
    void AllReduceMean(IReadOnlyList<Tensor> tensors);

    /// <summary>Element-wise mean over the ranks of host values (the loss terms, the loss normalisers).</summary>
    double[] AllReduceMean(double[] values);

    /// <summary>Starts the in-place mean over the ranks of one contiguous tensor where the engine works (host memory for
    /// MPI, the GPU for NCCL) and returns without waiting for it: the gradients of a stage whose backward is done,
    /// reduced while backward runs through the earlier stages (DDP's bucket all-reduce). Until
    /// <see cref="WaitAllReduces"/> returns, the tensor must be neither read nor written. Every rank starts the same
    /// sequence of sizes.</summary>
    void StartAllReduceMean(Tensor contiguous);

    /// <summary>Completes every reduction <see cref="StartAllReduceMean"/> started: afterwards the host (MPI), or the
    /// work queued next on the compute stream (NCCL), sees the means.</summary>
    void WaitAllReduces();

    /// <summary>In place: every rank ends with <paramref name="root"/>'s values.</summary>
    void Broadcast(IReadOnlyList<Tensor> tensors, int root = 0);

    /// <summary>Every rank's bytes, indexed by rank, on every rank.</summary>
    byte[][] AllGather(byte[] mine);

    /// <summary>Returns when every rank has called it.</summary>
    void Barrier();
}

/// <summary>One process: the mean over one rank is the value itself.</summary>
public sealed class SingleProcessCollective : ICollective
{
    public static readonly SingleProcessCollective Instance = new();

    private SingleProcessCollective() { }

    public int Rank => 0;
    public int WorldSize => 1;
    public void AllReduceMean(IReadOnlyList<Tensor> tensors) { }
    public double[] AllReduceMean(double[] values) => values;
    public void StartAllReduceMean(Tensor contiguous) { }
    public void WaitAllReduces() { }
    public void Broadcast(IReadOnlyList<Tensor> tensors, int root = 0) { }
    public byte[][] AllGather(byte[] mine) => [mine];
    public void Barrier() { }
    public void Dispose() { }
}
