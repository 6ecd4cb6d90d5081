using GflTrainer.Runtime;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Runtime;

/// <summary>The phase marks of the training step and what the profiler makes of them.</summary>
public sealed class StepProfilerTests
{
    [Fact]
    public void Phases_AreRecordedWithTheirParents_OnlyWhileAStepIsProfiled()
    {
        var profiler = new StepProfiler(CPU);
        using (StepProfiler.Phase("outside")) { }   // no active profiler: a no-op
        for (int step = 0; step < 2; step++)
        {
            using var s = profiler.Step();
            using (StepProfiler.Phase("loss"))
            {
                using (StepProfiler.Phase("targets")) Thread.Sleep(2);
            }
            using (StepProfiler.Phase("update")) { }
        }
        using (StepProfiler.Phase("after")) { }

        Assert.Equal(2, profiler.Steps);
        Assert.Equal(["step", "step/loss", "step/loss/targets", "step/update"], profiler.Durations().Select(d => d.Path));
        Assert.All(profiler.Durations(), d => Assert.Equal(2, d.Ms.Count));
        foreach (var p in profiler.Phases.Where(p => p.Path != "step"))
        {
            var parent = profiler.Phases.Single(q => q.Step == p.Step && q.Path == p.Path[..p.Path.LastIndexOf('/')]);
            Assert.InRange(p.StartUs, parent.StartUs, parent.StartUs + parent.DurationUs);
            Assert.True(p.StartUs + p.DurationUs <= parent.StartUs + parent.DurationUs + 1e-6, $"{p.Path} outlasts {parent.Path}");
        }
        Assert.All(profiler.Phases.Where(p => p.Name == "targets"), p => Assert.True(p.DurationUs >= 2000, $"{p.DurationUs} us"));
    }

    /// <summary>A phase entered twice in one step (the gradient check around the one-read loss transfer) gives one value
    /// per step, its total: the medians stay per step.</summary>
    [Fact]
    public void A_phase_entered_twice_in_a_step_counts_its_total_once_per_step()
    {
        var profiler = new StepProfiler(CPU);
        for (int step = 0; step < 3; step++)
        {
            using var s = profiler.Step();
            using (StepProfiler.Phase("check")) Thread.Sleep(2);
            using (StepProfiler.Phase("read")) { }
            using (StepProfiler.Phase("check")) Thread.Sleep(3);
        }
        var check = profiler.Durations().Single(d => d.Path == "step/check").Ms;
        Assert.Equal(3, check.Count);
        for (int step = 0; step < 3; step++)
        {
            var parts = profiler.Phases.Where(p => p.Step == step && p.Path == "step/check").Select(p => p.DurationUs / 1000.0).ToList();
            Assert.Equal(2, parts.Count);
            Assert.Equal(parts.Sum(), check[step], 9);
            Assert.True(check[step] >= 5, $"{check[step]} ms");
        }
    }

    [Fact]
    public void A_step_inside_a_step_and_phases_ended_out_of_order_are_errors()
    {
        var profiler = new StepProfiler(CPU);
        using (profiler.Step())
        {
            Assert.Throws<InvalidOperationException>(() => profiler.Step());
            var outer = StepProfiler.Phase("outer");
            var inner = StepProfiler.Phase("inner");
            Assert.Contains("step/outer ended before step/outer/inner", Assert.Throws<InvalidOperationException>(() => outer.Dispose()).Message);
            inner.Dispose();
            outer.Dispose();
        }
        Assert.Equal(["step", "step/outer", "step/outer/inner"], profiler.Durations().Select(d => d.Path).Order());
        Assert.Throws<ArgumentException>(() => { using (profiler.Step()) StepProfiler.Phase("a/b"); });
    }

    /// <summary>With operators counted, each phase carries the ATen operators called during it (a parent includes its
    /// children's), per step; without, none (and no recorder is left behind: another may start).</summary>
    [Fact]
    public void Operators_are_counted_per_phase_and_step_when_asked()
    {
        using var scope = NewDisposeScope();
        var a = ones(4, 4);
        var profiler = new StepProfiler(CPU, countOperators: true);
        for (int step = 0; step < 2; step++)
        {
            using var s = profiler.Step();
            using (StepProfiler.Phase("forward")) { _ = a + a; _ = a * a; }
            using (StepProfiler.Phase("update")) _ = a.matmul(a);   // one call, which dispatches mm in turn
        }
        Assert.Null(profiler.OperatorsUnavailable);
        var counts = profiler.OperatorCounts().ToDictionary(c => c.Path);
        Assert.Equal([2L, 2L], counts["step/forward"].Operators);
        Assert.Equal([1L, 1L], counts["step/update"].Operators);
        Assert.Equal([3L, 3L], counts["step"].Operators);
        Assert.True(counts["step/update"].AtenCalls[0] > 1);
        Assert.All(profiler.Phases, p => Assert.NotNull(p.Operators));

        var plain = new StepProfiler(CPU);
        using (plain.Step()) using (StepProfiler.Phase("forward")) _ = a + a;
        Assert.Empty(plain.OperatorCounts());
        Assert.All(plain.Phases, p => Assert.Null(p.Operators));
        using var free = GflTrainer.Runtime.Native.AtenOpRecorder.Start();   // the profiler's recorder was released
        _ = a + a;
        Assert.Equal(1, free.TopLevel);
    }
}
