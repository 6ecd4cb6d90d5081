using System.CommandLine;
using GflTrainer.Benchmarks;

namespace GflTrainer.Cli.Commands;

/// <summary><c>gfl bench data|model|targets|train-step|infer|eval</c>: prints a table and optionally writes JSON
/// (<c>--json-out</c>) with the same fields as scripts/reference/bench.py, so scripts/bench_compare.sh can pair them.</summary>
public static class BenchCommand
{
    static readonly Option<string?> JsonOut = new("--json-out") { Description = "Also write the results as JSON here" };
    static readonly Option<int> Threads = new("--threads") { Description = "torch intra-op threads (0: libtorch default)", DefaultValueFactory = _ => 0 };
    static readonly Option<int> Repeats = new("--repeats") { Description = "Timed repetitions (median reported)", DefaultValueFactory = _ => 5 };
    static readonly Option<int> Warmup = new("--warmup") { Description = "Untimed warm-up repetitions", DefaultValueFactory = _ => 1 };
    static readonly Option<int> Depth = new("--depth") { Description = "ResNet depth", DefaultValueFactory = _ => 50 };
    static readonly Option<int> Batch = new("--batch") { Description = "Images per step", DefaultValueFactory = _ => 2 };
    static readonly Option<string> Head = HeadOption();
    static readonly Option<bool> CudnnBenchmark = new("--cudnn-benchmark") { Description = "cuDNN autotuning per input shape (runtime.cudnn_benchmark); CUDA only" };

    static Option<string> HeadOption()
    {
        var head = new Option<string>("--head")
        {
            Description = "The R50 model of this head (mmdetection's *_r50_fpn_1x_coco): gfl, atss or retinanet", DefaultValueFactory = _ => "gfl",
        };
        head.AcceptOnlyFromAmong("gfl", "atss", "retinanet");
        return head;
    }

    public static Command Create()
    {
        var bench = new Command("bench", "Benchmarks that print figures (speed targets are measured here, never in tests)");
        bench.Subcommands.Add(Data());
        bench.Subcommands.Add(ModelCmd());
        bench.Subcommands.Add(Targets());
        bench.Subcommands.Add(TrainStep());
        bench.Subcommands.Add(Infer());
        bench.Subcommands.Add(Eval());
        bench.Subcommands.Add(AllReduce());
        return bench;
    }

    static Command WithCommon(Command c, params Option[] extra)
    {
        c.Options.Add(JsonOut); c.Options.Add(Threads); c.Options.Add(Repeats); c.Options.Add(Warmup);
        foreach (var o in extra) c.Options.Add(o);
        return c;
    }

    static int Print(ParseResult p, CommandContext ctx, BenchReport report)
    {
        report.Write(ctx.Out, p.GetValue(JsonOut));
        return ExitCodes.Ok;
    }

    static string? DeviceOf(ParseResult p) => p.GetValue(GlobalOptions.Device);

    static Command Data()
    {
        var ann = new Option<string>("--ann") { Description = "COCO annotation file", Required = true };
        var images = new Option<string>("--images") { Description = "Image folder", Required = true };
        var workers = new Option<int>("--workers") { Description = "Loader workers", DefaultValueFactory = _ => 1 };
        var count = new Option<int>("--count") { Description = "Images to process", DefaultValueFactory = _ => 100 };
        var targets = new Option<string>("--targets")
        {
            Description = "Also build each batch's training targets in the workers, for the R50 model of this head (runtime.targets: loader): none, gfl, atss or retinanet",
            DefaultValueFactory = _ => "none",
        };
        targets.AcceptOnlyFromAmong("none", "gfl", "atss", "retinanet");
        var cmd = WithCommon(new Command("data", "Images/s of decode + resize (1333, 800) + flip + normalise + pad + collate"), ann, images, workers, count, targets);
        cmd.SetAction(p => GlobalOptions.Execute(p, ctx => Print(p, ctx, Bench.Data(p.GetValue(ann)!, p.GetValue(images)!, p.GetValue(workers), p.GetValue(count), p.GetValue(Threads),
            p.GetValue(targets)!))));
        return cmd;
    }

    static Command ModelCmd()
    {
        var height = new Option<int>("--height") { DefaultValueFactory = _ => 800 };
        var width = new Option<int>("--width") { DefaultValueFactory = _ => 1344 };
        var channelsLast = new Option<bool>("--channels-last") { Description = "Input and conv weights in NHWC memory (channels_last)" };
        var cmd = WithCommon(new Command("model", "Forward and forward+backward ms per image of ResNet-FPN-GFL"), Depth, Batch, height, width, channelsLast);
        cmd.SetAction(p => GlobalOptions.Execute(p, ctx => Print(p, ctx, Bench.Model(ctx.Log, DeviceOf(p), p.GetValue(Depth), p.GetValue(Batch), p.GetValue(height), p.GetValue(width), p.GetValue(Repeats), p.GetValue(Threads),
            p.GetValue(channelsLast)))));
        return cmd;
    }

    static Command Targets()
    {
        var backward = new Option<bool>("--backward") { Description = "Include the backward pass of the losses" };
        var cmd = WithCommon(new Command("targets", "ATSS assignment + QFL/DFL/GIoU for 2 images at 1344x800 with 50 gts each"), backward);
        cmd.SetAction(p => GlobalOptions.Execute(p, ctx => Print(p, ctx, Bench.Targets(ctx.Log, DeviceOf(p), p.GetValue(backward), p.GetValue(Repeats), p.GetValue(Warmup), p.GetValue(Threads)))));
        return cmd;
    }

    static Command TrainStep()
    {
        var amp = new Option<string>("--amp") { Description = "off | bf16 | fp16", DefaultValueFactory = _ => "off" };
        var height = new Option<int>("--height") { DefaultValueFactory = _ => 800 };
        var width = new Option<int>("--width") { DefaultValueFactory = _ => 1344 };
        var config = new Option<string?>("--config")
        {
            Description = "Time the model, loss and grad clipping of this config (e.g. configs/quickstart.yaml) instead of R50-GFL; " +
                "--depth is then ignored, --batch/--height/--width still apply",
        };
        var profile = new Option<string?>("--profile")
        {
            Description = "Also time each phase of the step (forward, targets, losses, loss read, backward, gradient check, update) and " +
                "write a Chrome trace here (chrome://tracing, ui.perfetto.dev); on CUDA the phases are synchronised and run as extra steps",
        };
        var channelsLast = new Option<bool>("--channels-last") { Description = "Train in channels_last (runtime.channels_last): NHWC input and conv weights" };
        var targets = new Option<string>("--targets")
        {
            Description = "Where the targets are built (runtime.targets): step (inside the timed step, as the reference), loader (on the host " +
                "before it, as training's loader workers, reported apart as host_targets_ms) or auto (loader on CUDA for GFL and ATSS, else step)",
            DefaultValueFactory = _ => "auto",
        };
        targets.AcceptOnlyFromAmong("auto", "loader", "step");
        var overlap = new Option<string>("--overlap-backward")
        {
            Description = "Under a launcher (mpirun, srun, torchrun; the step is then data-parallel, --batch per rank): on reduces each " +
                "stage's gradients during backward, off the whole buffer after it (train.dist.overlap_backward)",
            DefaultValueFactory = _ => "on",
        };
        overlap.AcceptOnlyFromAmong("on", "off");
        var lossReads = new Option<string>("--loss-reads")
        {
            Description = "When the step reads its loss back (runtime.loss_reads): step (each step), log_interval (the step reads nothing; " +
                "each sample then reads its one step, and pipelined_ms times --repeats steps in a row with one read at the end, as training " +
                "between two log lines) or auto (log_interval on CUDA, else step)",
            DefaultValueFactory = _ => "auto",
        };
        lossReads.AcceptOnlyFromAmong("auto", "step", "log_interval");
        var capacity = new Option<int>("--positive-capacity")
        {
            Description = "With targets built ahead: pad the batch's positive anchors to this many rows, the fixed shapes a CUDA graph " +
                "replays (gfl data stats prints the positives per image); reported as positive_rows. 0: off",
            DefaultValueFactory = _ => 0,
        };
        capacity.Validators.Add(r => { if (r.GetValueOrDefault<int>() < 0) r.AddError("--positive-capacity must be 0 (off) or positive"); });
        var cmd = WithCommon(new Command("train-step", "Full SGD step of R50-GFL (forward, targets, losses, backward, update)"), Depth, Batch, amp, height, width, config, Head, profile, channelsLast, CudnnBenchmark, targets, overlap, lossReads, capacity);
        cmd.SetAction(p => GlobalOptions.Execute(p, ctx =>
        {
            var report = Bench.TrainStep(ctx.Log, DeviceOf(p), p.GetValue(Depth), p.GetValue(Batch), p.GetValue(amp) ?? "off", p.GetValue(height), p.GetValue(width),
                p.GetValue(Repeats), p.GetValue(Warmup), p.GetValue(config), p.GetValue(Threads), p.GetValue(Head)!, p.GetValue(profile),
                p.GetValue(channelsLast), p.GetValue(CudnnBenchmark), p.GetValue(targets)!, p.GetValue(overlap) == "on", p.GetValue(lossReads)!,
                p.GetValue(capacity));
            return report is null ? ExitCodes.Ok : Print(p, ctx, report);   // rank 0 prints
        }));
        return cmd;
    }

    static Command Infer()
    {
        var height = new Option<int>("--height") { DefaultValueFactory = _ => 800 };
        var width = new Option<int>("--width") { DefaultValueFactory = _ => 1344 };
        var batch = new Option<int>("--batch") { Description = "Images per forward", DefaultValueFactory = _ => 1 };
        var engine = new Option<string>("--engine")
        {
            Description = "torchsharp (gfl's model) or onnxruntime (the same model as gfl export writes it, in ONNX Runtime on the CPU, " +
                "same threads and post-processing); run each in its own process to compare peak RSS",
            DefaultValueFactory = _ => "torchsharp",
        };
        engine.AcceptOnlyFromAmong("torchsharp", "onnxruntime");
        var channelsLast = new Option<bool>("--channels-last") { Description = "Conv weights and input in channels_last (runtime.channels_last); torchsharp engine" };
        var cmd = WithCommon(new Command("infer", "Inference (model + post-processing) images/s at 1333x800"), Depth, batch, height, width, engine, Head, channelsLast, CudnnBenchmark);
        cmd.SetAction(p => GlobalOptions.Execute(p, ctx => Print(p, ctx, Bench.Infer(ctx.Log, DeviceOf(p), p.GetValue(Depth), p.GetValue(batch), p.GetValue(height), p.GetValue(width), p.GetValue(Repeats),
            p.GetValue(Warmup), p.GetValue(Threads), p.GetValue(engine)!, p.GetValue(Head)!, p.GetValue(channelsLast),
            p.GetValue(CudnnBenchmark)))));
        return cmd;
    }

    static Command Eval()
    {
        var ann = new Option<string>("--annotations") { Description = "GT json (default: the large_timing fixture)", Required = true };
        var dets = new Option<string>("--detections") { Description = "Detections json", Required = true };
        var cmd = WithCommon(new Command("eval", "COCO evaluation time: load, evaluate, accumulate"), ann, dets);
        cmd.SetAction(p => GlobalOptions.Execute(p, ctx => Print(p, ctx, Bench.Eval(p.GetValue(ann)!, p.GetValue(dets)!, p.GetValue(Repeats)))));
        return cmd;
    }

    static Command AllReduce()
    {
        var sizes = new Option<double[]>("--sizes-mb") { Description = "Message sizes in MB", DefaultValueFactory = _ => [1, 16, 128], AllowMultipleArgumentsPerToken = true };
        var backend = new Option<Config.DistBackend>("--backend") { Description = "auto | mpi | nccl", DefaultValueFactory = _ => Config.DistBackend.Auto };
        var cmd = WithCommon(new Command("allreduce", "Verify the collectives, then time the gradient all-reduce (run under mpirun/srun/torchrun)"), sizes, backend);
        cmd.SetAction(p => GlobalOptions.Execute(p, ctx =>
        {
            var report = Bench.AllReduce(ctx.Log, DeviceOf(p), p.GetValue(backend), p.GetValue(sizes)!, p.GetValue(Repeats), p.GetValue(Warmup));
            return report is null ? ExitCodes.Ok : Print(p, ctx, report);   // rank 0 prints
        }));
        return cmd;
    }
}
