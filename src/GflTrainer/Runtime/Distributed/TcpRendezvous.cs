using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace GflTrainer.Runtime.Distributed;

/// <summary>Hands rank 0's bytes (the NCCL unique id) to every rank over TCP at MASTER_ADDR:MASTER_PORT, as
/// torch.distributed's TCPStore does for its NCCL id: rank 0 listens, the others connect (retrying until rank 0 is up),
/// say who they are, and receive the bytes. It is the bootstrap only: the collectives themselves run in NCCL.</summary>
internal static class TcpRendezvous
{
    const uint Magic = 0x52_4C_46_47;   // "GFLR"

    /// <param name="payload">rank 0's bytes; ignored on the other ranks.</param>
    /// <returns>rank 0's bytes, on every rank.</returns>
    public static byte[] Exchange(LaunchEnvironment launch, byte[]? payload, TimeSpan timeout)
    {
        if (launch.WorldSize == 1) return payload ?? [];
        var port = launch.MasterPort ?? throw new GflConfigException(
            $"MASTER_PORT is not set: the ranks of a {launch.Launcher} job meet at MASTER_ADDR:MASTER_PORT (torchrun sets both; " +
            "under mpirun/srun export them, e.g. MASTER_ADDR=<first node> MASTER_PORT=29500)") { Key = "MASTER_PORT" };
        return launch.Rank == 0
            ? Serve(port, launch.WorldSize, payload ?? throw new ArgumentNullException(nameof(payload)), timeout)
            : Fetch(launch.MasterAddress ?? "127.0.0.1", port, launch.Rank, launch.WorldSize, timeout);
    }

    static byte[] Serve(int port, int world, byte[] payload, TimeSpan timeout)
    {
        using var listener = new TcpListener(IPAddress.IPv6Any, port);
        listener.Server.DualMode = true;
        listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        try { listener.Start(world); }
        catch (SocketException e)
        {
            throw new GflRuntimeException($"rendezvous: cannot listen on port {port} ({e.Message}); choose a free MASTER_PORT", e);
        }
        var deadline = DateTime.UtcNow + timeout;
        var joined = new SortedSet<int>();
        while (joined.Count < world - 1)
        {
            var accept = listener.AcceptTcpClientAsync();
            if (!accept.Wait(Remaining(deadline)))
                throw new GflRuntimeException($"rendezvous: after {timeout.TotalSeconds:F0} s rank(s) " +
                    $"{string.Join(", ", Enumerable.Range(1, world - 1).Except(joined))} of {world} have not connected to port {port}");
            using var client = accept.Result;
            client.ReceiveTimeout = client.SendTimeout = 30_000;
            var stream = client.GetStream();
            var hello = new byte[12];
            try { stream.ReadExactly(hello); }
            catch (IOException) { continue; }   // connected but said nothing: not a rank
            uint magic = BinaryPrimitives.ReadUInt32LittleEndian(hello);
            int rank = BinaryPrimitives.ReadInt32LittleEndian(hello.AsSpan(4)), theirs = BinaryPrimitives.ReadInt32LittleEndian(hello.AsSpan(8));
            if (magic != Magic) continue;   // a stray connection (a port scanner, another program): not a rank
            if (theirs != world)
                throw new GflRuntimeException($"rendezvous: rank {rank} was started with world size {theirs}, rank 0 with {world}");
            if (rank < 1 || rank >= world || !joined.Add(rank))
                throw new GflRuntimeException($"rendezvous: a second rank {rank} connected (two jobs on one MASTER_PORT?)");
            var reply = new byte[4 + payload.Length];
            BinaryPrimitives.WriteInt32LittleEndian(reply, payload.Length);
            payload.CopyTo(reply, 4);
            stream.Write(reply);
        }
        return payload;
    }

    static byte[] Fetch(string host, int port, int rank, int world, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        Exception? last = null;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                using var client = new TcpClient();
                if (!client.ConnectAsync(host, port).Wait(Remaining(deadline))) break;
                client.ReceiveTimeout = client.SendTimeout = (int)Math.Max(1000, Remaining(deadline).TotalMilliseconds);
                var stream = client.GetStream();
                var hello = new byte[12];
                BinaryPrimitives.WriteUInt32LittleEndian(hello, Magic);
                BinaryPrimitives.WriteInt32LittleEndian(hello.AsSpan(4), rank);
                BinaryPrimitives.WriteInt32LittleEndian(hello.AsSpan(8), world);
                stream.Write(hello);
                var length = new byte[4];
                stream.ReadExactly(length);
                var payload = new byte[BinaryPrimitives.ReadInt32LittleEndian(length)];
                stream.ReadExactly(payload);
                return payload;
            }
            catch (Exception e) when (e is SocketException or IOException or AggregateException)
            {
                last = e;   // rank 0 not listening yet, or it went away between two tries
                Thread.Sleep(100);
            }
        }
        throw new GflRuntimeException($"rendezvous: rank {rank} could not reach rank 0 at {host}:{port} within " +
            $"{timeout.TotalSeconds:F0} s{(last is null ? "" : $" ({last.GetBaseException().Message})")}");
    }

    static TimeSpan Remaining(DateTime deadline)
    {
        var left = deadline - DateTime.UtcNow;
        return left > TimeSpan.Zero ? left : TimeSpan.Zero;
    }
}
