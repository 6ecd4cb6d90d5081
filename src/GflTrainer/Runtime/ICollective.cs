using static TorchSharp.torch;

namespace GflTrainer.Runtime;

/// <summary>The collective operations a data-parallel run needs (torch.distributed's all_reduce and barrier, as DDP
/// uses them): gradients are averaged over the ranks after backward, the logged loss values likewise, and every rank
/// then takes the same optimizer step. <see cref="SingleProcessCollective"/> is the one-process case; an NCCL or MPI
/// implementation binds the engines' C APIs.</summary>
public interface ICollective
{
    /// <summary>This process's rank, 0-based; rank 0 writes logs and checkpoints.</summary>
    int Rank { get; }

    /// <summary>Number of processes taking part.</summary>
    int WorldSize { get; }

    /// <summary>In place: every rank ends with the element-wise mean over the ranks of each tensor.</summary>
    void AllReduceMean(IReadOnlyList<Tensor> tensors);

    /// <summary>Element-wise mean over the ranks of host values (e.g. the step's loss terms).</summary>
    double[] AllReduceMean(double[] values);

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
    public void Barrier() { }
}
