using GflTrainer.Runtime.Native;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Runtime;

/// <summary>The operator counts come from libtorch's own dispatcher (its RecordFunction observers), called by name.</summary>
public sealed class AtenOpRecorderTests
{
    [Fact]
    public void Counts_each_dispatched_operator_and_tells_top_level_calls_from_nested_ones()
    {
        using var scope = NewDisposeScope();
        var a = ones(3, 4);
        var b = ones(3, 4);
        var w = ones(4, 5);
        using (var recorder = AtenOpRecorder.Start(names: true))
        {
            _ = a + b;
            Assert.Equal(1, recorder.TopLevel);
            Assert.Equal(["aten::add"], recorder.TopLevelSequence);
            // matmul is a composite: one call from TorchSharp, which dispatches the mm it is made of.
            _ = a.matmul(w);
            Assert.Equal(2, recorder.TopLevel);
            Assert.Equal(["aten::add", "aten::matmul"], recorder.TopLevelSequence);
            Assert.True(recorder.Calls > recorder.TopLevel, $"{recorder.Calls} calls for {recorder.TopLevel} top-level ones");
            var byName = recorder.CallsByName();
            Assert.Equal(1, byName["aten::matmul"]);
            Assert.Equal(1, byName["aten::mm"]);
            Assert.Equal(recorder.Calls, byName.Values.Sum());
            // Autograd's backward dispatches operators too, on this thread for CPU tensors.
            var x = ones(3, requires_grad: true);
            var before = recorder.TopLevel;
            (x * 2).sum().backward();
            Assert.True(recorder.Calls > before + 2);
            Assert.Contains("aten::mul", recorder.CallsByName().Keys);
        }
        // Removed: nothing is counted after Dispose, and a new recorder starts from zero.
        using (var next = AtenOpRecorder.Start())
        {
            Assert.Equal(0, next.Calls);
            _ = a * b;
            Assert.Equal(1, next.TopLevel);
        }
    }

    /// <summary>Observers are per thread: another thread's operators are not counted, and recorders on two threads
    /// take turns rather than mixing their counts.</summary>
    [Fact]
    public void Only_the_recording_threads_operators_count_and_recorders_take_turns()
    {
        using var scope = NewDisposeScope();
        var a = ones(8);
        using (var recorder = AtenOpRecorder.Start())
        {
            // Threads of their own (a task waited for may run inline on this thread).
            var busy = new Thread(() => { using var s = NewDisposeScope(); for (int i = 0; i < 10; i++) _ = a + a; });
            busy.Start();
            busy.Join();
            Assert.Equal(0, recorder.Calls);
            long otherCount = -1;
            var second = new Thread(() =>
            {
                using var s = NewDisposeScope();
                using var other = AtenOpRecorder.Start();
                _ = a + a;
                otherCount = other.TopLevel;
            });
            second.Start();
            Assert.False(second.Join(200), "a second recorder waits for the first");
            _ = a - a;
            Assert.Equal(1, recorder.TopLevel);
            // On its own thread a second one is refused rather than waiting for itself.
            Assert.Throws<InvalidOperationException>(() => AtenOpRecorder.Start());
            recorder.Dispose();
            second.Join();
            Assert.Equal(1, otherCount);
        }
    }
}
