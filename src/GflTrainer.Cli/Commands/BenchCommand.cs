using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using GflTrainer.Data;
using GflTrainer.Evaluation;
using GflTrainer.Model;
using GflTrainer.Training;
using TorchSharp;

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

    public static Command Create()
    {
        var bench = new Command("bench", "Benchmarks that print figures (speed targets are measured here, never in tests)");
        bench.Subcommands.Add(Data());
        bench.Subcommands.Add(ModelCmd());
        bench.Subcommands.Add(Targets());
        bench.Subcommands.Add(TrainStep());
        bench.Subcommands.Add(Infer());
        bench.Subcommands.Add(Eval());
        return bench;
    }

    static Command WithCommon(Command c, params Option[] extra)
    {
        c.Options.Add(JsonOut); c.Options.Add(Threads); c.Options.Add(Repeats); c.Options.Add(Warmup);
        foreach (var o in extra) c.Options.Add(o);
        return c;
    }

    static void ApplyThreads(ParseResult p)
    {
        int t = p.GetValue(Threads);
        if (t > 0) torch.set_num_threads(t);
    }

    static int Emit(ParseResult p, string bench, IReadOnlyList<(string Key, object Value)> rows)
    {
        Console.WriteLine($"gfl bench {bench}");
        int w = rows.Max(r => r.Key.Length);
        foreach (var (k, v) in rows) Console.WriteLine($"  {k.PadRight(w)}  {Format(v)}");
        var path = p.GetValue(JsonOut);
        if (path is not null)
        {
            var obj = new JsonObject { ["impl"] = "gfl", ["bench"] = bench };
            foreach (var (k, v) in rows) obj[k] = JsonSerializer.SerializeToNode(v);
            var dir = Path.GetDirectoryName(Path.GetFullPath(path));
            if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
            File.WriteAllText(path, obj.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        }
        return ExitCodes.Ok;
    }

    static string Format(object v) => v switch
    {
        double d => d.ToString(Math.Abs(d) >= 100 ? "F1" : "F3"),
        IEnumerable<double> xs => "[" + string.Join(", ", xs.Select(x => x.ToString("F1"))) + "]",
        _ => v.ToString() ?? "",
    };

    static List<(string, object)> Common(string device, int? threads = null) =>
    [
        ("device", device), ("threads", threads ?? torch.get_num_threads()), ("cores", Environment.ProcessorCount),
        ("malloc_hugetlb", NativeEnvironment.HugePageMallocActive ? "on" : "off"),
    ];

    static Command Data()
    {
        var ann = new Option<string>("--ann") { Description = "COCO annotation file", Required = true };
        var images = new Option<string>("--images") { Description = "Image folder", Required = true };
        var workers = new Option<int>("--workers") { Description = "Loader workers", DefaultValueFactory = _ => 1 };
        var count = new Option<int>("--count") { Description = "Images to process", DefaultValueFactory = _ => 100 };
        var cmd = WithCommon(new Command("data", "Images/s of decode + resize (1333, 800) + flip + normalise + pad + collate"), ann, images, workers, count);
        cmd.SetAction(p => GlobalOptions.Execute(p, _ =>
        {
            ApplyThreads(p);
            var r = DataBenchmark.Run(p.GetValue(ann)!, p.GetValue(images)!, p.GetValue(workers), p.GetValue(count));
            var rows = Common("cpu");
            rows.AddRange([("workers", r.Workers), ("images", r.Images), ("decode_images_per_s", r.DecodeOnlyImagesPerSecond),
                ("images_per_s", r.PipelineImagesPerSecond), ("images_per_s_per_worker", r.PipelineImagesPerSecond / Math.Max(1, r.Workers)),
                ("stage_read_ms", r.Stages.ReadMs), ("stage_decode_ms", r.Stages.DecodeMs), ("stage_resize_flip_ms", r.Stages.ResizeFlipMs),
                ("stage_collate_ms", r.Stages.CollateMs), ("stages_total_ms", r.Stages.TotalMs), ("images_per_s_one_core", 1000 / r.Stages.TotalMs),
                ("peak_rss_mb", PeakRssMb())]);
            return Emit(p, "data", rows);
        }));
        return cmd;
    }

    static Command ModelCmd()
    {
        var height = new Option<int>("--height") { DefaultValueFactory = _ => 800 };
        var width = new Option<int>("--width") { DefaultValueFactory = _ => 1344 };
        var cmd = WithCommon(new Command("model", "Forward and forward+backward ms per image of ResNet-FPN-GFL"), Depth, Batch, height, width);
        cmd.SetAction(p => GlobalOptions.Execute(p, _ =>
        {
            ApplyThreads(p);
            var device = DeviceSelector.Resolve(p.GetValue(GlobalOptions.Device));
            var r = ModelBenchmark.Run(device, p.GetValue(Depth), p.GetValue(height), p.GetValue(width), p.GetValue(Batch), p.GetValue(Repeats));
            var rows = Common(r.Device);
            rows.AddRange([("depth", r.Depth), ("batch", r.Batch), ("height", r.Height), ("width", r.Width),
                ("forward_ms_per_image", r.ForwardMsPerImage), ("forward_backward_ms_per_image", r.ForwardBackwardMsPerImage),
                ("peak_rss_mb", PeakRssMb())]);
            return Emit(p, "model", rows);
        }));
        return cmd;
    }

    static Command Targets()
    {
        var backward = new Option<bool>("--backward") { Description = "Include the backward pass of the losses" };
        var cmd = WithCommon(new Command("targets", "ATSS assignment + QFL/DFL/GIoU for 2 images at 1344x800 with 50 gts each"), backward);
        cmd.SetAction(p => GlobalOptions.Execute(p, _ =>
        {
            ApplyThreads(p);
            var device = DeviceSelector.Resolve(p.GetValue(GlobalOptions.Device));
            var samples = new List<double>();
            for (int i = 0; i < p.GetValue(Repeats); i++) samples.Add(TargetsBenchmark.Run(device, 1, p.GetValue(backward)));
            var rows = Common(device.ToString());
            rows.AddRange([("median_ms", Median(samples)), ("samples_ms", samples), ("peak_rss_mb", PeakRssMb())]);
            return Emit(p, "targets", rows);
        }));
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
        var cmd = WithCommon(new Command("train-step", "Full SGD step of R50-GFL (forward, targets, losses, backward, update)"), Depth, Batch, amp, height, width, config);
        cmd.SetAction(p => GlobalOptions.Execute(p, _ =>
        {
            ApplyThreads(p);
            var device = DeviceSelector.Resolve(p.GetValue(GlobalOptions.Device));
            var cfg = p.GetValue(config) is { } file ? Config.ConfigLoader.Load(file) : null;
            var r = TrainStepBenchmark.TrainStep(device, p.GetValue(Depth), p.GetValue(Batch), p.GetValue(height), p.GetValue(width),
                p.GetValue(Repeats), p.GetValue(Warmup), p.GetValue(amp) ?? "off", cfg);
            return Emit(p, "train-step", TimingRows(r));
        }));
        return cmd;
    }

    static Command Infer()
    {
        var height = new Option<int>("--height") { DefaultValueFactory = _ => 800 };
        var width = new Option<int>("--width") { DefaultValueFactory = _ => 1344 };
        var batch = new Option<int>("--batch") { Description = "Images per forward", DefaultValueFactory = _ => 1 };
        var cmd = WithCommon(new Command("infer", "Inference (model + post-processing) images/s at 1333x800"), Depth, batch, height, width);
        cmd.SetAction(p => GlobalOptions.Execute(p, _ =>
        {
            ApplyThreads(p);
            var device = DeviceSelector.Resolve(p.GetValue(GlobalOptions.Device));
            var r = TrainStepBenchmark.Inference(device, p.GetValue(Depth), p.GetValue(batch), p.GetValue(height), p.GetValue(width),
                p.GetValue(Repeats), p.GetValue(Warmup));
            return Emit(p, "infer", TimingRows(r));
        }));
        return cmd;
    }

    static Command Eval()
    {
        var ann = new Option<string>("--annotations") { Description = "GT json (default: the large_timing fixture)", Required = true };
        var dets = new Option<string>("--detections") { Description = "Detections json", Required = true };
        var cmd = WithCommon(new Command("eval", "COCO evaluation time: load, evaluate, accumulate"), ann, dets);
        cmd.SetAction(p => GlobalOptions.Execute(p, _ =>
        {
            var r = CocoEvalBenchmark.Run(p.GetValue(ann)!, p.GetValue(dets)!, p.GetValue(Repeats));
            // The evaluator is plain .NET (Parallel.For): don't load libtorch just to report its thread count, its
            // pages would count in the peak RSS compared with pycocotools'.
            var rows = Common("cpu", r.Threads);
            foreach (var prop in r.GetType().GetProperties())
            {
                var v = prop.GetValue(r);
                if (v is double or int or long or string && rows.All(x => x.Item1 != ToSnake(prop.Name))) rows.Add((ToSnake(prop.Name), v!));
            }
            rows.Add(("peak_rss_mb", PeakRssMb()));
            return Emit(p, "eval", rows);
        }));
        return cmd;
    }

    static List<(string, object)> TimingRows(StepTiming r)
    {
        var rows = Common(r.Device);
        rows.AddRange([("batch", r.Batch), ("height", r.Height), ("width", r.Width), ("amp", r.Amp), ("median_ms", r.MedianMs),
            ("images_per_s", r.ImagesPerSecond), ("samples_ms", r.SamplesMs), ("peak_rss_mb", r.PeakRssBytes / 1048576.0)]);
        if (r.GradCheckMedianMs is { } check) rows.Add(("grad_check_ms", check));   // included in median_ms
        return rows;
    }

    static double Median(IReadOnlyList<double> xs)
    {
        var s = xs.OrderBy(x => x).ToList();
        return s.Count % 2 == 1 ? s[s.Count / 2] : (s[s.Count / 2 - 1] + s[s.Count / 2]) / 2;
    }

    static double PeakRssMb() { using var p = Process.GetCurrentProcess(); return p.PeakWorkingSet64 / 1048576.0; }

    static string ToSnake(string name) =>
        string.Concat(name.Select((c, i) => char.IsUpper(c) && i > 0 ? "_" + char.ToLowerInvariant(c) : char.ToLowerInvariant(c).ToString()));
}
