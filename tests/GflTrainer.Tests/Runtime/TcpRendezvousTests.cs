using System.Net;
using System.Net.Sockets;
using GflTrainer.Runtime.Distributed;
using GflTrainer.Runtime.Native;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Runtime;

/// <summary>The NCCL bootstrap pieces that run without a GPU: the rendezvous that hands rank 0's id to every rank, and
/// the device-pointer export the NCCL calls take.</summary>
public sealed class TcpRendezvousTests
{
    static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    static LaunchEnvironment Rank(int rank, int world, int port) =>
        new(Launcher.Torchrun, rank, world, rank, world, "127.0.0.1", port);

    [Fact]
    public void EveryRankReceivesRankZerosBytes_WhicheverStartsFirst()
    {
        int port = FreePort();
        var id = Enumerable.Range(0, 128).Select(i => (byte)(i * 7)).ToArray();
        // Ranks 1 and 2 start before rank 0 listens: they retry until it does.
        var others = Enumerable.Range(1, 2).Select(r => Task.Run(() => TcpRendezvous.Exchange(Rank(r, 3, port), null, TimeSpan.FromSeconds(20)))).ToList();
        Thread.Sleep(300);
        var zero = TcpRendezvous.Exchange(Rank(0, 3, port), id, TimeSpan.FromSeconds(20));
        Assert.Equal(id, zero);
        Assert.All(others, t => Assert.Equal(id, t.Result));
    }

    [Fact]
    public void AStrayConnectionIsIgnored_AndAMissingRankIsNamedAtTheTimeout()
    {
        int port = FreePort();
        var serve = Task.Run(() => TcpRendezvous.Exchange(Rank(0, 3, port), [1, 2, 3], TimeSpan.FromSeconds(3)));
        using (var stray = new TcpClient())
        {
            for (int tries = 0; ; tries++)   // until rank 0 listens
            {
                try { stray.Connect(IPAddress.Loopback, port); break; }
                catch (SocketException) when (tries < 100) { Thread.Sleep(50); }
            }
            stray.GetStream().Write("GET / HTTP/1.0\r\n\r\n"u8);
        }
        Assert.Equal(new byte[] { 1, 2, 3 }, TcpRendezvous.Exchange(Rank(2, 3, port), null, TimeSpan.FromSeconds(3)));
        var e = Assert.Throws<AggregateException>(() => serve.Wait());
        Assert.Contains("rank(s) 1 of 3 have not connected", e.InnerException!.Message);
    }

    [Fact]
    public void DifferentWorldSizes_AreRefused()
    {
        int port = FreePort();
        var serve = Task.Run(() => TcpRendezvous.Exchange(Rank(0, 2, port), [9], TimeSpan.FromSeconds(10)));
        Thread.Sleep(200);
        _ = Task.Run(() => { try { TcpRendezvous.Exchange(Rank(1, 4, port), null, TimeSpan.FromSeconds(2)); } catch (GflRuntimeException) { } });
        var e = Assert.Throws<AggregateException>(() => serve.Wait());
        Assert.Contains("rank 1 was started with world size 4, rank 0 with 2", e.InnerException!.Message);
    }

    [Fact]
    public void WithoutMasterPort_TheMessageSaysWhatToSet()
    {
        var e = Assert.Throws<GflConfigException>(() => TcpRendezvous.Exchange(new LaunchEnvironment(Launcher.OpenMpi, 1, 2, 1, 2), null, TimeSpan.FromSeconds(1)));
        Assert.Contains("MASTER_PORT is not set", e.Message);
    }

    [Fact]
    public unsafe void TensorPointer_IsTheAddressOfTheFirstElement()
    {
        using var t = arange(10, dtype: ScalarType.Float32);
        fixed (byte* p = t.bytes) Assert.Equal((nint)p, TensorData.Pointer(t));
        using var view = t.narrow(0, 3, 4);
        fixed (byte* p = t.bytes) Assert.Equal((nint)p + 12, TensorData.Pointer(view));
        using var strided = t.view(2, 5).t();
        Assert.Throws<ArgumentException>(() => TensorData.Pointer(strided));
    }
}
