using GflTrainer.Runtime.Native;
using static TorchSharp.torch;

namespace GflTrainer.Runtime.Distributed;

/// <summary><see cref="ICollective"/> over NCCL on the local rank's GPU: the GPU backend. The communicator is made from
/// rank 0's unique id (handed out by <see cref="TcpRendezvous"/> at MASTER_ADDR:MASTER_PORT). Gradients are reduced in
/// place with ncclAvg in <see cref="GradientBuckets"/> packed on the device; host values
/// and byte arrays travel through small device tensors. Reductions started during backward
/// (<see cref="StartAllReduceMean"/>) run on a stream of their own, ordered after the compute stream's work by events, so
/// they overlap the rest of backward. Every call runs at world size 1 too (NCCL reduces over one rank), so the bench
/// checks the library on one GPU; training makes no collective calls at world size 1. NOT YET RUN on a GPU (no GPU
/// session since it was written): see docs/distributed.md.</summary>
public sealed unsafe class NcclCollective : ICollective
{
    readonly Nccl _nccl;
    readonly Device _device;
    nint _comm;
    nint _sideStream, _ready, _done;
    bool _pending;

    public int Rank { get; }
    public int WorldSize { get; }

    public NcclCollective(LaunchEnvironment launch, Device device, TimeSpan rendezvousTimeout)
    {
        if (device.type != TorchSharp.DeviceType.CUDA) throw new ArgumentException("NCCL needs a CUDA device", nameof(device));
        _nccl = Nccl.Api;
        _device = device;
        Rank = launch.Rank; WorldSize = launch.WorldSize;
        _nccl.Check(_nccl.CudaSetDevice(device.index), $"cudaSetDevice({device.index})");
        NcclUniqueId id = default;
        byte[]? mine = null;
        if (Rank == 0)
        {
            _nccl.Check(_nccl.GetUniqueId(&id), "ncclGetUniqueId");
            mine = new ReadOnlySpan<byte>(id.Internal, 128).ToArray();
        }
        var shared = TcpRendezvous.Exchange(launch, mine, rendezvousTimeout);
        if (shared.Length != 128) throw new GflRuntimeException($"rendezvous: NCCL id of {shared.Length} bytes, expected 128");
        shared.CopyTo(new Span<byte>(id.Internal, 128));
        nint comm;
        _nccl.Check(_nccl.CommInitRank(&comm, WorldSize, id, Rank), $"ncclCommInitRank(rank {Rank} of {WorldSize})");
        _comm = comm;
    }

    static int TypeOf(ScalarType t) => t switch
    {
        ScalarType.Float32 => Nccl.Float32,
        ScalarType.Float64 => Nccl.Float64,
        ScalarType.Byte => Nccl.Uint8,
        ScalarType.Int64 => Nccl.Int64,
        _ => throw new NotSupportedException($"NCCL collective of {t} tensors"),
    };

    public void AllReduceMean(IReadOnlyList<Tensor> tensors)
    {
        if (tensors.Count == 0) return;
        GradientBuckets.ReduceEach(tensors, _device, flat => AllReduceInPlace(flat, Nccl.Avg));
    }

    void AllReduceInPlace(Tensor flat, int op, nint stream = 0)
    {
        var p = TensorData.Pointer(flat);
        _nccl.Check(_nccl.AllReduce(p, p, (nuint)flat.numel(), TypeOf(flat.dtype), op, _comm, stream), "ncclAllReduce");
    }

    /// <summary>ncclAllReduce (ncclAvg) on the side stream, after an event that marks the compute stream's work so far
    /// (the backward kernels that wrote these gradients; the legacy default stream libtorch uses). The gradients live in
    /// the optimizer's persistent buffer, so the caching allocator never hands their memory to the compute stream
    /// meanwhile.</summary>
    public void StartAllReduceMean(Tensor contiguous)
    {
        if (contiguous.numel() == 0) return;
        if (!contiguous.is_contiguous() || contiguous.device.type != TorchSharp.DeviceType.CUDA)
            throw new ArgumentException("NCCL reduces contiguous device tensors", nameof(contiguous));
        // The streams, events and the legacy default stream below are the current device's: this rank's GPU, whatever
        // device the calling thread last set (libtorch's device guards restore theirs after each op).
        _nccl.CheckCuda(_nccl.CudaSetDevice(_device.index), $"cudaSetDevice({_device.index})");
        if (_sideStream == 0)
        {
            nint stream, ready, done;
            _nccl.CheckCuda(_nccl.CudaStreamCreateWithFlags(&stream, Nccl.StreamNonBlocking), "cudaStreamCreateWithFlags");
            _nccl.CheckCuda(_nccl.CudaEventCreateWithFlags(&ready, Nccl.EventDisableTiming), "cudaEventCreateWithFlags");
            _nccl.CheckCuda(_nccl.CudaEventCreateWithFlags(&done, Nccl.EventDisableTiming), "cudaEventCreateWithFlags");
            (_sideStream, _ready, _done) = (stream, ready, done);
        }
        // cudaStreamWaitEvent takes the event as recorded at the call, so one event serves every start.
        _nccl.CheckCuda(_nccl.CudaEventRecord(_ready, 0), "cudaEventRecord");
        _nccl.CheckCuda(_nccl.CudaStreamWaitEvent(_sideStream, _ready, 0), "cudaStreamWaitEvent");
        AllReduceInPlace(contiguous, Nccl.Avg, _sideStream);
        _pending = true;
    }

    /// <summary>Queues a wait for the side stream on the compute stream: the kernels queued next (unscale, the check, the
    /// update) start after the last reduction, without blocking the host.</summary>
    public void WaitAllReduces()
    {
        if (!_pending) return;
        _nccl.CheckCuda(_nccl.CudaSetDevice(_device.index), $"cudaSetDevice({_device.index})");
        _nccl.CheckCuda(_nccl.CudaEventRecord(_done, _sideStream), "cudaEventRecord");
        _nccl.CheckCuda(_nccl.CudaStreamWaitEvent(0, _done, 0), "cudaStreamWaitEvent");
        _pending = false;
    }

    public double[] AllReduceMean(double[] values)
    {
        if (values.Length == 0) return (double[])values.Clone();
        using var scope = NewDisposeScope();
        var t = tensor(values, device: _device);
        AllReduceInPlace(t, Nccl.Avg);
        return t.cpu().data<double>().ToArray();
    }

    public void Broadcast(IReadOnlyList<Tensor> tensors, int root = 0)
    {
        foreach (var t in tensors)
        {
            using var scope = NewDisposeScope();
            var buf = t.detach().to(_device).contiguous().clone();
            var p = TensorData.Pointer(buf);
            _nccl.Check(_nccl.Broadcast(p, p, (nuint)buf.numel(), TypeOf(buf.dtype), root, _comm, 0), "ncclBroadcast");
            t.detach().copy_(buf);
        }
    }

    public byte[][] AllGather(byte[] mine)
    {
        using var scope = NewDisposeScope();
        var lengths = Gather(tensor(new long[] { mine.Length }, device: _device)).cpu().data<long>().ToArray();
        long max = Math.Max(1, lengths.Max());
        var padded = new byte[max];
        mine.CopyTo(padded, 0);
        var all = Gather(tensor(padded, device: _device)).cpu().data<byte>().ToArray();
        return Enumerable.Range(0, WorldSize).Select(r => all.AsSpan((int)(r * max), (int)lengths[r]).ToArray()).ToArray();
    }

    Tensor Gather(Tensor mine)
    {
        var all = empty(mine.numel() * WorldSize, dtype: mine.dtype, device: _device);
        _nccl.Check(_nccl.AllGather(TensorData.Pointer(mine), TensorData.Pointer(all), (nuint)mine.numel(), TypeOf(mine.dtype), _comm, 0),
            "ncclAllGather");
        return all;
    }

    public void Barrier()
    {
        AllReduceMean([0.0]);   // returns to the host only after every rank contributed
    }

    public void Dispose()
    {
        if (_sideStream != 0)
        {
            _nccl.CudaEventDestroy(_ready);
            _nccl.CudaEventDestroy(_done);
            _nccl.CudaStreamDestroy(_sideStream);
            _sideStream = 0;
        }
        if (_comm == 0) return;
        _nccl.CommDestroy(_comm);
        _comm = 0;
    }
}
