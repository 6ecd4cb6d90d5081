using System.Runtime.InteropServices;
using GflTrainer.Runtime.Native;
using static TorchSharp.torch;

namespace GflTrainer.Runtime.Distributed;

/// <summary><see cref="ICollective"/> over Open MPI's MPI_COMM_WORLD: the CPU backend of data-parallel training (and a
/// slower GPU one, staging device tensors through host memory). Tensors are reduced in <see cref="GradientBuckets"/>
/// packed in host memory, summed in place with MPI_Allreduce and divided by the world size.</summary>
public sealed unsafe class MpiCollective : ICollective
{
    const int MaxCount = int.MaxValue / 8;   // MPI counts are int: larger buffers go in pieces

    readonly OpenMpi _mpi;
    readonly List<nint> _requests = [];
    readonly List<Tensor> _started = [];
    bool _disposed;

    public int Rank { get; }
    public int WorldSize { get; }

    /// <summary>MPI_Init (once per process) and this rank's place in MPI_COMM_WORLD, which must be what the launcher
    /// said: a process started by torchrun is a world of one to MPI.</summary>
    public MpiCollective(LaunchEnvironment launch)
    {
        _mpi = OpenMpi.Api;
        _mpi.Init();
        int rank, size;
        _mpi.Check(_mpi.CommRank(_mpi.CommWorld, &rank), "MPI_Comm_rank");
        _mpi.Check(_mpi.CommSize(_mpi.CommWorld, &size), "MPI_Comm_size");
        Rank = rank; WorldSize = size;
        if (size != launch.WorldSize || rank != launch.Rank)
            throw new GflConfigException($"train.dist.backend mpi: MPI sees rank {rank} of {size}, the launcher ({launch.Launcher}) " +
                $"said rank {launch.Rank} of {launch.WorldSize}; start the processes with mpirun or srun (MPI), or use backend nccl " +
                "under torchrun") { Key = "train.dist.backend" };
    }

    public void AllReduceMean(IReadOnlyList<Tensor> tensors)
    {
        if (WorldSize == 1 || tensors.Count == 0) return;
        GradientBuckets.ReduceEach(tensors, CPU, flat =>
        {
            SumInPlace(flat, TypeOf(flat.dtype));
            flat.div_(WorldSize);
        });
    }

    /// <summary>Element-wise sum over the ranks of a contiguous CPU tensor, in place.</summary>
    void SumInPlace(Tensor flat, nint type)
    {
        long n = flat.numel(), size = flat.element_size();
        fixed (byte* p = flat.bytes)
            for (long off = 0; off < n; off += MaxCount)
            {
                int count = (int)Math.Min(MaxCount, n - off);
                _mpi.Check(_mpi.Allreduce(OpenMpi.InPlace, (nint)(p + off * size), count, type, _mpi.Sum, _mpi.CommWorld), "MPI_Allreduce");
            }
    }

    /// <summary>MPI_Iallreduce of the tensor in the bucket-sized pieces <see cref="GradientBuckets"/> cuts. Open MPI's
    /// shared-memory and TCP transports have no progress thread: a started reduction advances inside MPI calls, so each
    /// start also tests the earlier ones (MPI_Testall), and what is left finishes in <see cref="WaitAllReduces"/>.</summary>
    public void StartAllReduceMean(Tensor contiguous)
    {
        if (WorldSize == 1 || contiguous.numel() == 0) return;
        if (!contiguous.is_contiguous() || contiguous.device.type != TorchSharp.DeviceType.CPU)
            throw new ArgumentException("MPI reduces contiguous host tensors", nameof(contiguous));
        var type = TypeOf(contiguous.dtype);
        // The pieces are views of this buffer's memory: valid until the wait, which divides the whole buffer.
        GradientBuckets.ReduceEach([contiguous], CPU, piece =>
        {
            nint request;
            _mpi.Check(_mpi.Iallreduce(OpenMpi.InPlace, TensorData.Pointer(piece), (int)piece.numel(), type, _mpi.Sum, _mpi.CommWorld, &request),
                "MPI_Iallreduce");
            _requests.Add(request);
        });
        _started.Add(contiguous.detach().DetachFromDisposeScope());   // divided and released in WaitAllReduces
        var requests = CollectionsMarshal.AsSpan(_requests);
        int done;
        fixed (nint* r = requests)
            _mpi.Check(_mpi.Testall(requests.Length, r, &done, OpenMpi.StatusesIgnore), "MPI_Testall");
    }

    public void WaitAllReduces()
    {
        if (_requests.Count > 0)
        {
            var requests = CollectionsMarshal.AsSpan(_requests);
            fixed (nint* r = requests)
                _mpi.Check(_mpi.Waitall(requests.Length, r, OpenMpi.StatusesIgnore), "MPI_Waitall");
            _requests.Clear();
        }
        foreach (var t in _started)
        {
            t.div_(WorldSize);
            t.Dispose();
        }
        _started.Clear();
    }

    nint TypeOf(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 => _mpi.Float,
        ScalarType.Float64 => _mpi.Double,
        var t => throw new NotSupportedException($"MPI all-reduce of {t} tensors (gradients are float32 masters)"),
    };

    public double[] AllReduceMean(double[] values)
    {
        var sum = (double[])values.Clone();
        if (WorldSize == 1 || sum.Length == 0) return sum;
        fixed (double* p = sum)
            _mpi.Check(_mpi.Allreduce(OpenMpi.InPlace, (nint)p, sum.Length, _mpi.Double, _mpi.Sum, _mpi.CommWorld), "MPI_Allreduce");
        for (int i = 0; i < sum.Length; i++) sum[i] /= WorldSize;
        return sum;
    }

    public void Broadcast(IReadOnlyList<Tensor> tensors, int root = 0)
    {
        if (WorldSize == 1) return;
        foreach (var t in tensors)
        {
            using var scope = NewDisposeScope();
            var host = t.detach().cpu().contiguous().clone();
            long n = host.numel() * host.element_size();
            fixed (byte* p = host.bytes)
                for (long off = 0; off < n; off += MaxCount)
                    _mpi.Check(_mpi.Bcast((nint)(p + off), (int)Math.Min(MaxCount, n - off), _mpi.Byte, root, _mpi.CommWorld), "MPI_Bcast");
            t.detach().copy_(host);
        }
    }

    public byte[][] AllGather(byte[] mine)
    {
        if (WorldSize == 1) return [mine];
        var lengths = new int[WorldSize];
        int length = mine.Length;
        fixed (int* l = lengths)
            _mpi.Check(_mpi.Allgather((nint)(&length), 1, _mpi.Int, (nint)l, 1, _mpi.Int, _mpi.CommWorld), "MPI_Allgather");
        var displs = new int[WorldSize];
        long total = 0;
        for (int r = 0; r < WorldSize; r++)
        {
            if (total > int.MaxValue) throw new InvalidOperationException("all-gather of more than 2 GB");
            displs[r] = (int)total;
            total += lengths[r];
        }
        if (total > int.MaxValue) throw new InvalidOperationException("all-gather of more than 2 GB");
        var all = new byte[total];
        fixed (byte* send = mine)
        fixed (byte* recv = all)
        fixed (int* counts = lengths)
        fixed (int* offsets = displs)
            _mpi.Check(_mpi.Allgatherv((nint)send, mine.Length, _mpi.Byte, (nint)recv, counts, offsets, _mpi.Byte, _mpi.CommWorld), "MPI_Allgatherv");
        return Enumerable.Range(0, WorldSize).Select(r => all.AsSpan(displs[r], lengths[r]).ToArray()).ToArray();
    }

    public void Barrier()
    {
        if (WorldSize > 1) _mpi.Check(_mpi.Barrier(_mpi.CommWorld), "MPI_Barrier");
    }

    /// <summary>MPI_Finalize, after a barrier so no rank leaves while another still communicates.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        int finalized;
        if (_mpi.Finalized(&finalized) == 0 && finalized == 0) _mpi.Finalize();
    }
}
