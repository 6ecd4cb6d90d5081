using GflTrainer.Config;
using GflTrainer.Runtime;
using Serilog;

namespace GflTrainer.Benchmarks;

/// <summary>What each <c>gfl bench</c> subcommand runs, from its command-line values to its report: the CLI parses
/// options and prints; the device, libtorch's threads and the benchmarks are handled here.</summary>
public static class Bench
{
    /// <param name="threads">libtorch intra-op threads, 0 for libtorch's default.</param>
    /// <param name="targets">none, or the head (gfl, atss, retinanet) whose training targets the workers also build.</param>
    public static BenchReport Data(string annotationFile, string imageDir, int workers, int count, int threads, string targets = "none")
    {
        BenchReport.UseThreads(threads);
        return DataBenchmark.Report(DataBenchmark.Run(annotationFile, imageDir, workers, count, targets == "none" ? null : HeadOf(targets)));
    }

    /// <param name="channelsLast">input and conv weights in NHWC memory (the layout experiment of issue 21).</param>
    public static BenchReport Model(ILogger log, string? device, int depth, int batch, int height, int width, int repeats, int threads,
        bool channelsLast = false)
    {
        BenchReport.UseThreads(threads);
        return ModelBenchmark.Report(ModelBenchmark.Run(DeviceSelector.Resolve(device, log), depth, height, width, batch, repeats, channelsLast));
    }

    public static BenchReport Targets(ILogger log, string? device, bool backward, int repeats, int warmup, int threads)
    {
        BenchReport.UseThreads(threads);
        var d = DeviceSelector.Resolve(device, log);
        return TargetsBenchmark.Report(d, TargetsBenchmark.Run(d, repeats, backward, warmup));
    }

    /// <param name="configFile">time this configuration's model, loss and clipping instead of R50-GFL.</param>
    /// <param name="head">gfl, atss or retinanet: the R50 reference's head when no config is given.</param>
    /// <param name="profilePath">also profile the steps phase by phase and write the Chrome trace here.</param>
    /// <param name="channelsLast">train in channels_last (also on when the config sets runtime.channels_last).</param>
    /// <param name="cudnnBenchmark">cuDNN autotuning (also on when the config sets runtime.cudnn_benchmark).</param>
    /// <param name="overlapBackward">under a launcher: reduce each stage's gradients during backward
    /// (train.dist.overlap_backward), or the whole buffer after it.</param>
    /// <param name="positiveCapacity">pad the positives of targets built ahead to this many rows (0: off).</param>
    /// <returns>the report; null on the ranks other than 0 when started by a launcher (mpirun, srun, torchrun), which runs
    /// the data-parallel step: per-rank batch <paramref name="batch"/>, gradients averaged over the ranks.</returns>
    public static BenchReport? TrainStep(ILogger log, string? device, int depth, int batch, string amp, int height, int width, int repeats,
        int warmup, string? configFile, int threads, string head = "gfl", string? profilePath = null, bool channelsLast = false,
        bool cudnnBenchmark = false, string targets = "auto", bool overlapBackward = true, string lossReads = "auto", int positiveCapacity = 0)
    {
        var launch = Runtime.Distributed.LaunchEnvironment.Detect();
        var d = DeviceSelector.Resolve(device, log);
        using var ranks = launch.WorldSize > 1 ? Runtime.Distributed.DataParallel.Create(Config.DistBackend.Auto, launch, d, log) : null;
        BenchReport.UseThreads(threads);   // after the ranks split the cores, so --threads wins
        var cfg = configFile is null ? null : ConfigLoader.Load(configFile);
        var timing = TrainStepBenchmark.TrainStep(ranks?.Device ?? d, depth, batch, height, width, repeats, warmup, amp, cfg, HeadOf(head),
            ranks is null || ranks.IsMain ? profilePath : null, channelsLast, cudnnBenchmark, TargetsOf(targets), ranks?.Collective, overlapBackward,
            LossReadsOf(lossReads), positiveCapacity);
        ranks?.Complete();
        return ranks is null || ranks.IsMain ? TrainStepBenchmark.Report(timing) : null;
    }

    static LossReadTiming LossReadsOf(string value) => value switch
    {
        "auto" => LossReadTiming.Auto, "step" => LossReadTiming.Step, "log_interval" => LossReadTiming.LogInterval,
        _ => throw new GflConfigException($"--loss-reads {value}: expected auto, step or log_interval") { Key = "--loss-reads" },
    };

    static TargetsPlacement TargetsOf(string value) => value switch
    {
        "auto" => TargetsPlacement.Auto, "loader" => TargetsPlacement.Loader, "step" => TargetsPlacement.Step,
        _ => throw new GflConfigException($"--targets {value}: expected auto, loader or step") { Key = "--targets" },
    };

    /// <param name="engine">torchsharp or onnxruntime (<see cref="TrainStepBenchmark.Inference"/>).</param>
    /// <param name="channelsLast">conv weights and input in channels_last (torchsharp engine).</param>
    /// <param name="cudnnBenchmark">cuDNN autotuning.</param>
    public static BenchReport Infer(ILogger log, string? device, int depth, int batch, int height, int width, int repeats, int warmup, int threads,
        string engine = "torchsharp", string head = "gfl", bool channelsLast = false, bool cudnnBenchmark = false)
    {
        BenchReport.UseThreads(threads);
        var d = DeviceSelector.Resolve(device, log);
        return TrainStepBenchmark.Report(TrainStepBenchmark.Inference(d, depth, batch, height, width, repeats, warmup, engine, HeadOf(head),
            channelsLast, cudnnBenchmark));
    }

    /// <summary>Collectives of a data-parallel run (start it under mpirun/srun/torchrun): verified, then timed. Only rank 0
    /// gets a report; the others return null.</summary>
    public static BenchReport? AllReduce(ILogger log, string? device, Config.DistBackend backend, IReadOnlyList<double> megabytes, int repeats, int warmup)
    {
        var launch = Runtime.Distributed.LaunchEnvironment.Detect();
        using var ranks = Runtime.Distributed.DataParallel.Create(backend, launch, DeviceSelector.Resolve(device, log), log);
        var result = AllReduceBenchmark.Run(ranks, megabytes, repeats, warmup);
        ranks.Complete();
        return ranks.IsMain ? AllReduceBenchmark.Report(result) : null;
    }

    /// <summary>COCO evaluation alone: libtorch is never loaded.</summary>
    public static BenchReport Eval(string annotationFile, string detectionsFile, int repeats) =>
        CocoEvalBenchmark.Report(CocoEvalBenchmark.Run(annotationFile, detectionsFile, repeats));

    static HeadType HeadOf(string head) => head switch
    {
        "gfl" => HeadType.Gfl,
        "atss" => HeadType.Atss,
        "retinanet" => HeadType.Retinanet,
        _ => throw new GflConfigException($"--head {head}: expected gfl, atss or retinanet") { Key = "--head" },
    };
}
