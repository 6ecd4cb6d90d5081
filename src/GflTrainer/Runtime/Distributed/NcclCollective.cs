using GflTrainer.Runtime.Native;
using static TorchSharp.torch;

namespace GflTrainer.Runtime.Distributed;

/// <summary><see cref="ICollective"/> over NCCL on the local rank's GPU: the GPU backend. The communicator is made from
/// rank 0's unique id (handed out by <see cref="TcpRendezvous"/> at MASTER_ADDR:MASTER_PORT). Gradients are reduced in
/// place with ncclAvg in <see cref="GradientBuckets"/> packed on the device; host values
/// and byte arrays travel through small device tensors. NOT YET RUN on a GPU (no GPU session since it was written):
/// see docs/distributed.md.</summary>
public sealed unsafe class NcclCollective : ICollective
{
    readonly Nccl _nccl;
    readonly Device _device;
    nint _comm;

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
        if (WorldSize == 1 || tensors.Count == 0) return;
        GradientBuckets.ReduceEach(tensors, _device, flat => AllReduceInPlace(flat, Nccl.Avg));
    }

    void AllReduceInPlace(Tensor flat, int op)
    {
        var p = TensorData.Pointer(flat);
        _nccl.Check(_nccl.AllReduce(p, p, (nuint)flat.numel(), TypeOf(flat.dtype), op, _comm, 0), "ncclAllReduce");
    }

    public double[] AllReduceMean(double[] values)
    {
        if (WorldSize == 1 || values.Length == 0) return (double[])values.Clone();
        using var scope = NewDisposeScope();
        var t = tensor(values, device: _device);
        AllReduceInPlace(t, Nccl.Avg);
        return t.cpu().data<double>().ToArray();
    }

    public void Broadcast(IReadOnlyList<Tensor> tensors, int root = 0)
    {
        if (WorldSize == 1) return;
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
        if (WorldSize == 1) return [mine];
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
        if (WorldSize == 1) return;
        AllReduceMean([0.0]);   // returns to the host only after every rank contributed
    }

    public void Dispose()
    {
        if (_comm == 0) return;
        _nccl.CommDestroy(_comm);
        _comm = 0;
    }
}
