using System.Diagnostics;
using GflTrainer.Config;
using GflTrainer.Model;
using GflTrainer.Training;
using GflTrainer.Training.Losses;
using TorchSharp;
using GflTrainer.Inference;
using GflTrainer.Runtime;
using static TorchSharp.torch;

namespace GflTrainer.Benchmarks;

/// <summary>Timing of one benchmark: median and all samples in milliseconds per call.</summary>
public sealed record StepTiming(string Name, string Device, int Batch, int Height, int Width, int Iterations,
    double MedianMs, double ImagesPerSecond, IReadOnlyList<double> SamplesMs, long PeakRssBytes, int Threads, string Amp,
    double? GradCheckMedianMs = null, string Engine = "torchsharp", string Head = "gfl",
    IReadOnlyList<(string Path, double MedianMs)>? Phases = null, string? ProfilePath = null, bool ChannelsLast = false,
    bool CudnnBenchmark = false, bool TargetsInLoader = false, double? HostTargetsMedianMs = null, int WorldSize = 1,
    bool OverlapBackward = false, bool DeferredLossReads = false, double? PipelinedMs = null, long? PositiveRows = null,
    IReadOnlyList<(string Path, double Operators, double AtenCalls)>? PhaseOperators = null);

/// <summary>
/// The R50-GFL training step and inference on synthetic inputs shaped like COCO at (1333, 800): images padded to
/// 800x1344, 50 random boxes per image over 80 classes (seeded), exactly what scripts/reference/bench.py times so
/// the two can be compared on one machine. The train step is forward, targets + losses, backward and SGD update.
/// </summary>
public static class TrainStepBenchmark
{
    /// <param name="config">when given, the model, loss and gradient clipping of this configuration (e.g.
    /// configs/quickstart.yaml) instead of the R50-GFL of <paramref name="depth"/>; the input size and batch stay
    /// the benchmark's arguments.</param>
    /// <param name="head">the head of the R50 model when no <paramref name="config"/> is given.</param>
    /// <param name="profilePath">when given, the steps are also profiled phase by phase (<see cref="StepProfiler"/>) and
    /// the Chrome trace is written here. On the CPU the timed steps are the profiled ones (profiling changes nothing
    /// there); on CUDA, whose profile synchronises at every phase, as many extra steps after the timed ones.</param>
    /// <param name="positiveCapacity">with targets built ahead: pad the batch's positives to this many rows
    /// (<see cref="HostTargets"/>, the fixed shapes of a CUDA graph), so the timing shows what padding costs; 0: off.</param>
    /// <param name="targets">where the targets are built, as <c>runtime.targets</c> (null: the config's, auto by default:
    /// the loader on CUDA for GFL and ATSS, else the step). Built ahead, as the loader's workers do in training, they are built
    /// here once before timing (reported apart) and copied to the device inside each timed step.</param>
    public static StepTiming TrainStep(Device device, int depth = 50, int batch = 2, int height = 800, int width = 1344,
        int iterations = 5, int warmup = 2, string amp = "off", GflConfig? config = null, HeadType head = HeadType.Gfl,
        string? profilePath = null, bool channelsLast = false, bool cudnnBenchmark = false, TargetsPlacement? targets = null,
        ICollective? collective = null, bool overlapBackward = true, LossReadTiming lossReads = LossReadTiming.Auto, int positiveCapacity = 0)
    {
        AmpMode ampMode = amp switch { "bf16" => AmpMode.Bf16, "fp16" => AmpMode.Fp16, "off" => AmpMode.Off,
            _ => throw new GflConfigException($"--amp {amp}: expected off, bf16 or fp16") { Key = "--amp" } };
        // The reference R50 when no config is given: mmdetection's gfl_r50_fpn_1x_coco or atss_r50_fpn_1x_coco (no
        // gradient clipping).
        var cfg = config ?? Reference(depth, head);
        cfg = cfg with
        {
            Train = cfg.Train with { Amp = ampMode, Dist = cfg.Train.Dist with { OverlapBackward = overlapBackward } },
            Runtime = cfg.Runtime with
            {
                ChannelsLast = channelsLast || cfg.Runtime.ChannelsLast, CudnnBenchmark = cudnnBenchmark || cfg.Runtime.CudnnBenchmark,
                Targets = targets ?? cfg.Runtime.Targets,
                LossReads = lossReads == LossReadTiming.Auto ? cfg.Runtime.LossReads : lossReads,
            },
        };
        bool deferred = cfg.Runtime.DefersLossReads(device.type == DeviceType.CUDA);
        CuDnnBenchmark.Enabled = cfg.Runtime.CudnnBenchmark;
        torch.manual_seed(0);   // under a launcher every rank builds the same model from it
        using var model = DetectorFactory.CreateDetector(cfg.Model);
        model.to(device);
        if (cfg.Runtime.ChannelsLast) Runtime.ChannelsLast.Apply(model);
        model.train();
        var named = model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => (p.name, (Tensor)p.parameter)).ToList();
        using var sgd = new Sgd(named, 0.01, 0.9, 1e-4);
        var step = Training.TrainStep.FromConfig(cfg, model, sgd, device, collective);
        using var inputs = NewDisposeScope();
        var (images, boxes, labels) = SyntheticBatch(device, batch, height, width, cfg.Model.Head.NumClasses);
        var pads = Enumerable.Repeat((height, width), batch).ToList();
        inputs.Detach(images); foreach (var t in boxes.Concat(labels)) inputs.Detach(t);
        HostBatchTargets? hostTargets = null;
        var hostMs = new List<double>();
        bool targetsAhead = cfg.Runtime.TargetsInLoader(device.type == DeviceType.CUDA, step.Loss.TargetBuilder.Anchors.AnchorsPerLocation);
        if (positiveCapacity > 0 && !targetsAhead)
            throw new GflConfigException("--positive-capacity pads the targets built ahead: it needs --targets loader (or auto on CUDA for GFL and ATSS)")
                { Key = "--positive-capacity" };
        if (targetsAhead)
        {
            var host = new HostTargets(step.Loss.TargetBuilder, positiveCapacity);
            var boxArrays = boxes.Select(b => b.cpu().data<float>().ToArray()).ToList();
            var labelArrays = labels.Select(l => l.cpu().data<long>().ToArray()).ToList();
            for (int i = 0; i < 5; i++)
            {
                hostTargets?.Dispose();
                var sw = Stopwatch.StartNew();
                hostTargets = host.Build(boxArrays, labelArrays, pads, (height, width));
                hostMs.Add(sw.Elapsed.TotalMilliseconds);
            }
            if (positiveCapacity > 0 && !hostTargets!.PositivesPadded)
                throw new GflConfigException($"--positive-capacity {positiveCapacity}: the batch has {hostTargets.PositiveRowCount} positives, more than the capacity")
                    { Key = "--positive-capacity" };
        }

        var profiler = profilePath is null ? null : new StepProfiler(device, countOperators: true);
        // On the CPU the timed steps are profiled (after the warm-up); on CUDA extra steps after them.
        bool profileTimedSteps = profiler is not null && device.type != DeviceType.CUDA;
        int calls = 0;
        void Step(bool profile)
        {
            using var profiled = profile ? profiler!.Step() : null;
            if (deferred)
            {
                using var reads = new DeferredLosses();
                reads.Add(step.RunDeferred(images, boxes, labels, pads, hostTargets?.ToDevice(device)), 1, 0, 1, sgd.LearningRate, 0);
                using (StepProfiler.Phase("loss_read"))
                    CheckApplied(reads.Read(step.LossTermNames!));
                return;
            }
            // Random weights cannot produce a NaN here; if they do, the timing would not be of a training step.
            var r = step.Run(images, boxes, labels, pads, hostTargets?.ToDevice(device));
            if (!r.LossFinite) throw new GflRuntimeException($"bench train-step: non-finite loss ({r.Losses})");
            if (r.Update!.Value.NonFinite is { } bad)
                throw new GflRuntimeException($"bench train-step: non-finite gradient in {bad.Parameter}");
        }
        void CheckApplied(IReadOnlyList<DeferredStep> read)
        {
            if (read.FirstOrDefault(s => s.Halted) is { } refused)
                throw new GflRuntimeException($"bench train-step: a step was refused on the device ({refused.Losses}; gradients finite: {refused.GradientsFinite})");
        }
        var samples = BenchClock.SampleMs(device, warmup, iterations, () => Step(profileTimedSteps && calls++ >= warmup));
        if (profiler is not null && !profileTimedSteps)
            BenchClock.SampleMs(device, 0, iterations, () => Step(true));
        // Deferred reads: the steps between two log lines, back to back with one read at the end (the host queues the
        // next step while the device runs the last one), per step.
        double? pipelinedMs = null;
        if (deferred)
        {
            using var reads = new DeferredLosses();
            BenchClock.Synchronize(device);
            var clock = Stopwatch.StartNew();
            for (int i = 0; i < iterations; i++)
                using (NewDisposeScope())
                    reads.Add(step.RunDeferred(images, boxes, labels, pads, hostTargets?.ToDevice(device)), i + 1, 0, i + 1, sgd.LearningRate, 0);
            CheckApplied(reads.Read(step.LossTermNames!));
            pipelinedMs = clock.Elapsed.TotalMilliseconds / iterations;
        }
        // The gradient check alone (part of every step above), on the last step's real gradients.
        var check = new List<double>();
        for (int i = 0; i < 21; i++)
        {
            var sw = Stopwatch.StartNew();
            if (!GradientCheck.AllFiniteValues([sgd.Gradients])) throw new GflRuntimeException("bench train-step: non-finite gradient");
            check.Add(sw.Elapsed.TotalMilliseconds);
        }
        images.Dispose(); foreach (var t in boxes.Concat(labels)) t.Dispose();
        long? positiveRows = hostTargets?.PositiveRowCount;
        hostTargets?.Dispose();
        var headName = cfg.Model.Head.Type.ToString().ToLowerInvariant();
        if (profiler is not null)
            profiler.WriteTrace(profilePath!, new Dictionary<string, string>
            {
                ["command"] = "gfl bench train-step", ["device"] = device.ToString(), ["head"] = headName, ["batch"] = $"{batch}",
                ["input"] = $"{height}x{width}", ["amp"] = amp, ["channels_last"] = $"{cfg.Runtime.ChannelsLast}", ["cudnn_benchmark"] = $"{cfg.Runtime.CudnnBenchmark}", ["threads"] = $"{torch.get_num_threads()}",
                ["synchronised_phases"] = device.type == DeviceType.CUDA ? "yes" : "no (CPU)",
            });
        var result = Result("train-step", device, batch, height, width, samples, amp);
        return result with
        {
            ImagesPerSecond = result.ImagesPerSecond * (collective?.WorldSize ?? 1),
            GradCheckMedianMs = BenchClock.Median(check), Head = headName, ProfilePath = profilePath, ChannelsLast = cfg.Runtime.ChannelsLast,
            CudnnBenchmark = cfg.Runtime.CudnnBenchmark, TargetsInLoader = targetsAhead,
            HostTargetsMedianMs = hostMs.Count > 0 ? BenchClock.Median(hostMs) : null,
            WorldSize = collective?.WorldSize ?? 1, OverlapBackward = step.ReducesInBackward, DeferredLossReads = deferred, PipelinedMs = pipelinedMs,
            PositiveRows = positiveRows,
            Phases = profiler?.Durations().Select(d => (d.Path, BenchClock.Median(d.Ms))).ToList(),
            PhaseOperators = profiler?.OperatorCounts()
                .Select(c => (c.Path, BenchClock.Median(c.Operators.Select(x => (double)x).ToList()), BenchClock.Median(c.AtenCalls.Select(x => (double)x).ToList())))
                .ToList(),
        };
    }

    /// <summary>mmdetection's R50 model of the head: gfl_r50_fpn_1x_coco, atss_r50_fpn_1x_coco or retinanet_r50_fpn_1x_coco
    /// (configs/_base_/models/*.yaml: RetinaNet's FPN builds P6 from C5 and it has 9 anchors per location).</summary>
    internal static GflConfig Reference(int depth, HeadType head) => new()
    {
        Model = head == HeadType.Retinanet
            ? new ModelConfig
            {
                Backbone = new BackboneConfig { Depth = depth },
                Neck = new NeckConfig { AddExtraConvs = ExtraConvsSource.OnInput },
                Head = new HeadConfig { Type = head, OctaveBaseScale = 4, ScalesPerOctave = 3, Ratios = [0.5, 1.0, 2.0] },
                Test = new PostprocessConfig { NmsIou = 0.5 },
            }
            : new ModelConfig { Backbone = new BackboneConfig { Depth = depth }, Head = new HeadConfig { Type = head } },
    };

    /// <param name="engine">torchsharp (gfl's model) or onnxruntime: the same seeded model exported by <c>gfl export</c>'s
    /// writer (decoded outputs) and run in ONNX Runtime on as many threads as libtorch has, with the same post-processing
    /// (<see cref="OnnxDetector"/>, as <c>gfl predict --onnx</c>). Peak RSS is per process: run each engine in its own.</param>
    /// <param name="channelsLast">torchsharp only: conv weights and input in channels_last (<c>runtime.channels_last</c>).</param>
    public static StepTiming Inference(Device device, int depth = 50, int batch = 1, int height = 800, int width = 1344,
        int iterations = 5, int warmup = 2, string engine = "torchsharp", HeadType head = HeadType.Gfl, bool channelsLast = false,
        bool cudnnBenchmark = false)
    {
        if (engine is not ("torchsharp" or "onnxruntime"))
            throw new GflConfigException($"--engine {engine}: expected torchsharp or onnxruntime") { Key = "--engine" };
        if (engine == "onnxruntime" && device.type != DeviceType.CPU)
            throw new GflConfigException("--engine onnxruntime runs on the CPU: add --device cpu") { Key = "--engine" };
        if (channelsLast && engine != "torchsharp")
            throw new GflConfigException("--channels-last applies to --engine torchsharp") { Key = "--channels-last" };
        CuDnnBenchmark.Enabled = cudnnBenchmark;
        torch.manual_seed(0);
        var cfg = Reference(depth, head);
        var model = DetectorFactory.CreateDetector(cfg.Model);
        using var images = randn(batch, 3, height, width, device: device);
        var metas = Enumerable.Range(0, batch).Select(i => new Data.ImageMeta(i, "", height, Math.Min(width, 1333), height, Math.Min(width, 1333), height, width,
            1, 1, false)).ToList();
        OnnxDetector? onnx = null;
        try
        {
            return Time(device, batch, height, width, iterations, warmup, engine, engine == "torchsharp" ? TorchSharp() : OnnxRuntime())
                with { Head = cfg.Model.Head.Type.ToString().ToLowerInvariant(), ChannelsLast = channelsLast, CudnnBenchmark = cudnnBenchmark };
        }
        finally
        {
            onnx?.Dispose();
            model.Dispose();
        }

        Func<IReadOnlyList<Detections>> TorchSharp()
        {
            model.to(device);
            model.eval();
            if (channelsLast)
            {
                Runtime.ChannelsLast.Apply(model);
                images.set_(Runtime.ChannelsLast.Of(images));
            }
            var post = GflPostprocessor.FromConfig(cfg.Model);
            return () => post.Predict(model.forward(images), metas);
        }

        Func<IReadOnlyList<Detections>> OnnxRuntime()
        {
            var classes = new Data.CategoryMap(Enumerable.Range(1, cfg.Model.Head.NumClasses).Select(i => new Data.CategoryEntry(i, $"class{i}")).ToList());
            // Written to a file and loaded from there, as a user would: only ONNX Runtime's copy of the weights stays,
            // so the peak RSS is the engine's, not that of gfl's model or of the export.
            var file = Path.Combine(Path.GetTempPath(), $"gfl-bench-{Environment.ProcessId}.onnx");
            Export.GflOnnxExporter.Write(file, Export.GflOnnxExporter.Encode(model, cfg.Model,
                Export.ExportRun.Metadata(cfg, classes, model.Strides, "gfl bench infer (seeded random weights)", "", fp16: false)));
            model.Dispose();
            System.Runtime.GCSettings.LargeObjectHeapCompactionMode = System.Runtime.GCLargeObjectHeapCompactionMode.CompactOnce;
            GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
            NativeEnvironment.TrimHeap();
            try { onnx = OnnxDetector.Load(file, threads: torch.get_num_threads()); }
            finally { File.Delete(file); }
            return () => onnx.Predict(images, metas);
        }
    }

    static StepTiming Time(Device device, int batch, int height, int width, int iterations, int warmup, string engine,
        Func<IReadOnlyList<Detections>> detect)
    {
        var samples = BenchClock.SampleMs(device, warmup, iterations, () =>
        {
            using var _ = no_grad();
            foreach (var d in detect()) d.Scores.cpu();   // the boxes reach the host, as a user's results would
        });
        return Result("infer", device, batch, height, width, samples, "off") with { Engine = engine };
    }

    /// <summary>The rows of <c>gfl bench train-step</c> and <c>gfl bench infer</c>.</summary>
    public static BenchReport Report(StepTiming r)
    {
        var report = new BenchReport(r.Name, r.Device);
        report.Add("head", r.Head);
        if (r.Name == "infer") report.Add("engine", r.Engine);
        report.Add("channels_last", r.ChannelsLast).Add("cudnn_benchmark", r.CudnnBenchmark);
        if (r.Name == "train-step")
            report.Add("targets", r.TargetsInLoader ? "loader" : "step").Add("loss_reads", r.DeferredLossReads ? "log_interval" : "step");
        if (r.WorldSize > 1)   // batch is per rank; images_per_s counts every rank's
            report.Add("world_size", r.WorldSize).Add("overlap_backward", r.OverlapBackward);
        report.Add("batch", r.Batch).Add("height", r.Height).Add("width", r.Width).Add("amp", r.Amp).Add("median_ms", r.MedianMs)
            .Add("images_per_s", r.ImagesPerSecond).Add("samples_ms", r.SamplesMs).Add("peak_rss_mb", r.PeakRssBytes / 1048576.0);
        if (r.PipelinedMs is { } pipelined) report.Add("pipelined_ms", pipelined);   // per step, --repeats steps read once
        if (r.GradCheckMedianMs is { } check) report.Add("grad_check_ms", check);   // included in median_ms
        if (r.HostTargetsMedianMs is { } host) report.Add("host_targets_ms", host);   // not in median_ms: the loader's workers pay it
        if (r.PositiveRows is { } rows) report.Add("positive_rows", rows);   // the batch's positives, or the capacity they were padded to
        if (r.ProfilePath is { } trace) report.Add("profile", trace);
        foreach (var (path, ms) in r.Phases ?? []) report.Add($"phase {path} ms", ms);   // medians; a parent includes its children
        // Operators per step (medians): those not called by another (TorchSharp's and autograd's; on a GPU most launch
        // a kernel) and all those dispatched; then each phase's.
        if (r.PhaseOperators?.FirstOrDefault(p => p.Path == "step") is { Path: not null } whole)
            report.Add("ops_per_step", whole.Operators).Add("aten_calls_per_step", whole.AtenCalls);
        foreach (var (path, ops, _) in r.PhaseOperators ?? []) report.Add($"phase {path} ops", ops);
        return report;
    }

    /// <summary>Random images and gts as the reference benchmark draws them (seed 0): <see cref="RandomGroundTruth"/>
    /// inside the 1333x800 image.</summary>
    internal static (Tensor Images, List<Tensor> Boxes, List<Tensor> Labels) SyntheticBatch(Device device, int batch, int height, int width,
        int numClasses = 80)
    {
        var g = new Generator(0);
        var images = randn(batch, 3, height, width, generator: g).to(device);
        var (boxes, labels) = RandomGroundTruth(g, device, batch, Math.Min(width, 1333), height, numClasses: numClasses);
        return (images, boxes, labels);
    }

    /// <summary><paramref name="perImage"/> boxes per image over <paramref name="numClasses"/> classes, drawn from
    /// <paramref name="g"/> exactly as the reference's <c>random_gts</c> (scripts/reference/bench.py): sides uniform
    /// in 8..W/3 and 8..H/3 px, top-left corner uniform where the box fits, so both benchmarks assign comparable gts.</summary>
    internal static (List<Tensor> Boxes, List<Tensor> Labels) RandomGroundTruth(Generator g, Device device, int batch,
        int width, int height, int perImage = 50, int numClasses = 80)
    {
        var boxes = new List<Tensor>(); var labels = new List<Tensor>();
        var size = tensor(new float[] { width, height });
        for (int i = 0; i < batch; i++)
        {
            var wh = rand(perImage, 2, generator: g) * tensor(new float[] { width / 3f - 8, height / 3f - 8 }) + 8;
            var xy = rand(perImage, 2, generator: g) * (size - wh);
            boxes.Add(cat(new[] { xy, xy + wh }, 1).to(device));
            labels.Add(randint(0, numClasses, perImage, generator: g).to(device));
        }
        return (boxes, labels);
    }

    private static StepTiming Result(string name, Device device, int batch, int h, int w, List<double> samples, string amp)
    {
        double median = BenchClock.Median(samples);
        using var proc = Process.GetCurrentProcess();
        return new StepTiming(name, device.ToString(), batch, h, w, samples.Count, median, batch * 1000.0 / median, samples,
            proc.PeakWorkingSet64, torch.get_num_threads(), amp);
    }
}
