using System.Diagnostics;
using GflTrainer.Training;
using Xunit;

namespace GflTrainer.Tests.Training;

public class StepWatchdogTests
{
    static StepWatchdog Create(double factor, double minSeconds, Action<HangReport> onHang, string activity = "reading a.jpg (3 s)") =>
        new(factor, minSeconds, () => activity, onHang, Serilog.Core.Logger.None, pollSeconds: 0.02);

    [Fact]
    public void AnIterationThatDoesNotFinish_IsReportedOnce_WithPhaseActivityAndThreads()
    {
        var reports = new List<HangReport>();
        using var fired = new ManualResetEventSlim();
        using var dog = Create(2, 0.2, r => { lock (reports) reports.Add(r); fired.Set(); });
        dog.Enter("data", 7);

        Assert.True(fired.Wait(TimeSpan.FromSeconds(10)));
        Thread.Sleep(200);   // it reports once
        var r = Assert.Single(reports);
        Assert.Equal(7, r.Iteration);
        Assert.Equal("data", r.Phase);
        Assert.True(r.Seconds > 0.2);
        Assert.Contains("iteration 7 made no progress for", r.Details);
        Assert.Contains("reading a.jpg (3 s)", r.Details);
        Assert.Contains($"threads of pid {Environment.ProcessId}", r.Details);
        Assert.Contains("'gfl-watchdog' state", r.Details);   // the kernel's view of every thread, this one included
        // The managed stacks (a `gfl stacks` child attached to this test host): this test's thread, waiting for the report.
        Assert.Contains($"at {typeof(StepWatchdogTests).FullName}.{nameof(AnIterationThatDoesNotFinish_IsReportedOnce_WithPhaseActivityAndThreads)}", r.Details);
    }

    [Fact]
    public void TheLimitFollowsTheMedianIteration_AfterWarmup()
    {
        using var dog = Create(factor: 50, minSeconds: 0.5, _ => { });
        Assert.Equal(0.5, dog.LimitSeconds);   // no median yet
        for (int i = 1; i <= StepWatchdog.WarmupIterations; i++)
        {
            dog.Enter("data", i);
            Thread.Sleep(20);
            dog.Enter("step", i);   // same iteration: the clock keeps running
            Thread.Sleep(20);
            dog.Complete();
        }
        // median about 40 ms -> limit about 50 x 40 ms = 2 s (timer slack only makes it longer)
        Assert.InRange(dog.LimitSeconds, 1.9, 10);
    }

    [Fact]
    public void PausedOrCompletedIterations_AreNotTimed_AndTheLoopHaltsAfterAReport()
    {
        int hangs = 0;
        using (var dog = Create(2, 0.1, _ => Interlocked.Increment(ref hangs)))
        {
            dog.Enter("data", 1);
            dog.Complete();
            dog.Enter("data", 2);
            dog.Pause();            // a checkpoint or an evaluation follows: not an iteration
            Thread.Sleep(400);
            Assert.Equal(0, Volatile.Read(ref hangs));
        }

        using var halted = Create(2, 0.1, _ => Interlocked.Increment(ref hangs));
        halted.Enter("step", 3);
        var deadline = Stopwatch.StartNew();
        while (Volatile.Read(ref hangs) == 0 && deadline.Elapsed < TimeSpan.FromSeconds(10)) Thread.Sleep(10);
        Assert.Equal(1, hangs);
        // The stopping run's loop must not go on (the watchdog may be writing `last`).
        var late = Task.Run(() => halted.Complete());
        Assert.False(late.Wait(300));
    }

    /// <summary>Evaluation between iterations: each batch restarts the clock, the limit is min_seconds alone (not the
    /// much shorter factor x median of training iterations), and a stall there is reported as that phase.</summary>
    [Fact]
    public void EvaluationProgress_IsTimedAgainstMinSecondsAlone()
    {
        var reports = new List<HangReport>();
        using var fired = new ManualResetEventSlim();
        using var dog = Create(factor: 2, minSeconds: 0.6, r => { lock (reports) reports.Add(r); fired.Set(); });
        for (int i = 1; i <= StepWatchdog.WarmupIterations; i++) { dog.Enter("data", i); dog.Complete(); }   // median ~0 s
        Assert.InRange(dog.LimitSeconds, 0.6, 0.6);
        for (int batch = 0; batch < 6; batch++)   // 6 x 0.25 s: longer than the limit in all, never between two batches
        {
            dog.Progress("eval", StepWatchdog.WarmupIterations);
            Thread.Sleep(250);
        }
        Assert.Empty(reports);
        dog.Progress("eval", StepWatchdog.WarmupIterations);   // then a batch that never finishes
        Assert.True(fired.Wait(TimeSpan.FromSeconds(10)));
        var r = Assert.Single(reports);
        Assert.True(r.BetweenIterations);
        Assert.Equal("eval", r.Phase);
        Assert.StartsWith($"phase 'eval' after iteration {StepWatchdog.WarmupIterations} made no progress for", r.Details);
    }
}
