using GflTrainer.Runtime.Native;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Runtime.Native;

/// <summary>The loader workers' one-thread limit (<see cref="OpenMpThreads"/>) applies to the calling thread only: a
/// worker thread sees 1 (libtorch's get_num_threads is its OpenMP team size), while the step's thread keeps its own.</summary>
public sealed class OpenMpThreadsTests
{
    [Fact]
    public void The_limit_is_the_calling_threads_alone()
    {
        int before = get_num_threads();
        int onWorker = 0, three = 0;
        bool bound = false;
        var worker = new Thread(() =>
        {
            bound = OpenMpThreads.LimitCallingThread(3);   // whatever the core count or OMP_NUM_THREADS, the call is seen
            three = get_num_threads();
            OpenMpThreads.LimitCallingThread(1);
            onWorker = get_num_threads();
            using var scope = NewDisposeScope();
            Assert.Equal(4950.0, arange(100, dtype: ScalarType.Float64).sum().item<double>());   // kernels still run
        });
        worker.Start();
        worker.Join();
        Assert.True(bound);   // the libtorch this project ships is built with OpenMP (libgomp)
        Assert.Equal(3, three);
        Assert.Equal(1, onWorker);
        Assert.Equal(before, get_num_threads());
    }
}
