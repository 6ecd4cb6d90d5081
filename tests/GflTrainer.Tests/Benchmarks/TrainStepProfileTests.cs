using System.Text.Json;
using GflTrainer.Benchmarks;
using GflTrainer.Config;
using TorchSharp;
using Xunit;

namespace GflTrainer.Tests.Benchmarks;

/// <summary><c>gfl bench train-step --profile</c>: every phase of every timed step of the real train step, as a Chrome
/// trace that a viewer can open.</summary>
public sealed class TrainStepProfileTests
{
    // The report's rows by name.
    static Dictionary<string, object> Rows(StepTiming r) => TrainStepBenchmark.Report(r).Rows.ToDictionary(x => x.Key, x => x.Value);

    static readonly GflConfig Tiny = new()
    {
        Model = new ModelConfig
        {
            Backbone = new BackboneConfig { Depth = 18, BaseChannels = 8 },
            Neck = new NeckConfig { OutChannels = 16 },
            Head = new HeadConfig { NumClasses = 80, FeatChannels = 16, StackedConvs = 1, NormGroups = 4 },
        },
        Train = new TrainConfig { GradClip = new GradClipConfig { MaxNorm = 35 } },
    };

    [Theory]
    [InlineData(HeadType.Gfl)]
    [InlineData(HeadType.Retinanet)]
    public void Profile_CoversEveryPhaseOfEveryTimedStep_AndIsAChromeTrace(HeadType head)
    {
        var dir = Directory.CreateTempSubdirectory("gfl-profile-");
        try
        {
            var trace = Path.Combine(dir.FullName, "nested", "trace.json");
            var cfg = Tiny with { Model = Tiny.Model with { Head = Tiny.Model.Head with { Type = head } } };
            var r = TrainStepBenchmark.TrainStep(torch.CPU, batch: 2, height: 96, width: 128, iterations: 3, warmup: 1, config: cfg, profilePath: trace);

            var phases = r.Phases!.Select(p => p.Path).ToList();
            Assert.Equal(["step", "step/forward", "step/loss", "step/loss/targets", "step/loss_read", "step/backward",
                "step/grad_check", "step/clip", "step/update"], phases);
            var rows = Rows(r);
            Assert.Equal(trace, rows["profile"]);
            Assert.True((double)rows["phase step/backward ms"] > 0);

            using var doc = JsonDocument.Parse(File.ReadAllText(trace));
            var events = doc.RootElement.GetProperty("traceEvents").EnumerateArray().ToList();
            Assert.All(events, e => Assert.Equal("X", e.GetProperty("ph").GetString()));
            // The warm-up step is not profiled: each phase once per timed step.
            foreach (var path in phases)
                Assert.Equal(3, events.Count(e => e.GetProperty("args").GetProperty("path").GetString() == path));
            // The step's direct phases do not overlap and fit inside it, and the samples time the same steps.
            for (int step = 0; step < 3; step++)
            {
                var ofStep = events.Where(e => e.GetProperty("args").GetProperty("step").GetInt32() == step).ToList();
                var root = ofStep.Single(e => e.GetProperty("name").GetString() == "step");
                var children = ofStep.Where(e => e.GetProperty("args").GetProperty("path").GetString()!.Count(c => c == '/') == 1)
                    .OrderBy(e => e.GetProperty("ts").GetDouble()).ToList();
                double end = root.GetProperty("ts").GetDouble();
                foreach (var c in children)
                {
                    Assert.True(c.GetProperty("ts").GetDouble() >= end - 1e-3);
                    end = c.GetProperty("ts").GetDouble() + c.GetProperty("dur").GetDouble();
                }
                Assert.True(end <= root.GetProperty("ts").GetDouble() + root.GetProperty("dur").GetDouble() + 1e-3);
                Assert.True(root.GetProperty("dur").GetDouble() / 1000 <= r.SamplesMs[step] + 1e-3);
            }
            Assert.Equal("cpu", doc.RootElement.GetProperty("otherData").GetProperty("device").GetString());
        }
        finally { dir.Delete(true); }
    }

    /// <summary>With <c>--targets loader</c> (the default on CUDA) the step takes its targets built ahead, as training's
    /// loader builds them: no targets phase, their host time reported apart. On the CPU the default builds them in the step.</summary>
    [Fact]
    public void Targets_built_ahead_leave_the_step_and_are_reported_apart()
    {
        var r = TrainStepBenchmark.TrainStep(torch.CPU, batch: 2, height: 96, width: 128, iterations: 2, warmup: 1, config: Tiny,
            profilePath: Path.Combine(Path.GetTempPath(), $"gfl-profile-{Guid.NewGuid():N}.json"), targets: TargetsPlacement.Loader);
        try
        {
            Assert.True(r.TargetsInLoader);
            Assert.Equal(["step", "step/forward", "step/loss", "step/loss_read", "step/backward", "step/grad_check", "step/clip", "step/update"],
                r.Phases!.Select(p => p.Path));
            var rows = Rows(r);
            Assert.Equal("loader", rows["targets"]);
            Assert.True((double)rows["host_targets_ms"] > 0);
        }
        finally { File.Delete(r.ProfilePath!); }
        var inStep = Rows(TrainStepBenchmark.TrainStep(torch.CPU, batch: 1, height: 64, width: 64, iterations: 1, warmup: 0,
            config: Tiny));
        Assert.Equal("step", inStep["targets"]);
        Assert.DoesNotContain("host_targets_ms", inStep.Keys);
    }

    /// <summary><c>--loss-reads log_interval</c> (CUDA's default): each timed step runs the deferred step and reads its
    /// row, the phases are the device-decided ones (no separate loss read before backward), and pipelined_ms times the
    /// repeats back to back with one read. On the CPU the default reads every step and reports no pipelined_ms.</summary>
    [Fact]
    public void Deferred_loss_reads_are_run_and_reported_with_a_pipelined_figure()
    {
        var r = TrainStepBenchmark.TrainStep(torch.CPU, batch: 1, height: 64, width: 64, iterations: 2, warmup: 1, config: Tiny,
            profilePath: Path.Combine(Path.GetTempPath(), $"gfl-profile-{Guid.NewGuid():N}.json"), lossReads: LossReadTiming.LogInterval);
        try
        {
            Assert.True(r.DeferredLossReads);
            Assert.True(r.PipelinedMs > 0);
            Assert.Equal(["step", "step/forward", "step/loss", "step/loss/targets", "step/backward", "step/grad_check", "step/clip", "step/update", "step/loss_read"],
                r.Phases!.Select(p => p.Path));
            var rows = Rows(r);
            Assert.Equal("log_interval", rows["loss_reads"]);
            Assert.Contains("pipelined_ms", rows.Keys);
            // The profile counts the operators: the step's include its phases' (and the few between them, such as the
            // deferred row), the loss builds its targets in the step here (no loader), and the flat-buffer update is a
            // handful of kernels.
            var ops = r.PhaseOperators!.ToDictionary(p => p.Path);
            var inPhases = r.PhaseOperators!.Where(p => p.Path.Count(c => c == '/') == 1).Sum(p => p.Operators);
            Assert.InRange(ops["step"].Operators - inPhases, 0, 0.05 * ops["step"].Operators);
            Assert.True(ops["step/loss/targets"].Operators > 0);
            Assert.InRange(ops["step/update"].Operators, 1, 20);
            Assert.True(ops["step"].AtenCalls > ops["step"].Operators);
            Assert.Equal(ops["step"].Operators, (double)rows["ops_per_step"]);
        }
        finally { File.Delete(r.ProfilePath!); }
        var reads = Rows(TrainStepBenchmark.TrainStep(torch.CPU, batch: 1, height: 64, width: 64, iterations: 1, warmup: 0,
            config: Tiny));
        Assert.Equal("step", reads["loss_reads"]);
        Assert.DoesNotContain("pipelined_ms", reads.Keys);
    }

    /// <summary><c>--positive-capacity</c>: the step trains on positives padded to the capacity and says so; a capacity
    /// under the batch's positives, or without targets built ahead, is refused before timing.</summary>
    [Fact]
    public void Positive_capacity_pads_the_steps_positives_and_is_reported()
    {
        var plain = TrainStepBenchmark.TrainStep(torch.CPU, batch: 1, height: 64, width: 64, iterations: 1, warmup: 0, config: Tiny,
            targets: TargetsPlacement.Loader);
        Assert.True(plain.PositiveRows > 0);
        var padded = TrainStepBenchmark.TrainStep(torch.CPU, batch: 1, height: 64, width: 64, iterations: 1, warmup: 0, config: Tiny,
            targets: TargetsPlacement.Loader, positiveCapacity: (int)plain.PositiveRows!.Value + 50);
        Assert.Equal(plain.PositiveRows + 50, (long)Rows(padded)["positive_rows"]);
        var under = Assert.Throws<GflConfigException>(() => TrainStepBenchmark.TrainStep(torch.CPU, batch: 1, height: 64, width: 64,
            iterations: 1, warmup: 0, config: Tiny, targets: TargetsPlacement.Loader, positiveCapacity: (int)plain.PositiveRows.Value - 1));
        Assert.Contains("more than the capacity", under.Message);
        var inStep = Assert.Throws<GflConfigException>(() => TrainStepBenchmark.TrainStep(torch.CPU, batch: 1, height: 64, width: 64,
            iterations: 1, warmup: 0, config: Tiny, targets: TargetsPlacement.Step, positiveCapacity: 10));
        Assert.Equal("--positive-capacity", inStep.Key);
    }

    [Fact]
    public void Without_a_profile_no_phase_rows_are_reported()
    {
        var r = TrainStepBenchmark.TrainStep(torch.CPU, batch: 1, height: 64, width: 64, iterations: 1, warmup: 0, config: Tiny);
        Assert.Null(r.Phases);
        Assert.DoesNotContain(TrainStepBenchmark.Report(r).Rows, x => x.Key.StartsWith("phase") || x.Key == "profile");
    }

    /// <summary><c>--channels-last --cudnn-benchmark</c>: the step runs with NHWC weights and says what it ran with.</summary>
    [Fact]
    public void Channels_last_and_cudnn_benchmark_are_run_and_reported()
    {
        try
        {
            var r = TrainStepBenchmark.TrainStep(torch.CPU, batch: 1, height: 64, width: 64, iterations: 1, warmup: 0, config: Tiny,
                channelsLast: true, cudnnBenchmark: true);
            var rows = Rows(r);
            Assert.Equal(true, rows["channels_last"]);
            Assert.Equal(true, rows["cudnn_benchmark"]);
            Assert.True(GflTrainer.Runtime.CuDnnBenchmark.Enabled);
            var plain = Rows(TrainStepBenchmark.TrainStep(torch.CPU, batch: 1, height: 64, width: 64, iterations: 1, warmup: 0,
                config: Tiny));
            Assert.Equal(false, plain["channels_last"]);
            Assert.Equal(false, plain["cudnn_benchmark"]);
            Assert.False(GflTrainer.Runtime.CuDnnBenchmark.Enabled);
        }
        finally { GflTrainer.Runtime.CuDnnBenchmark.Enabled = false; }
    }
}
