using GflTrainer.Data.Statistics;
using System.CommandLine;
using GflTrainer.Data;
using GflTrainer.Data.Conversion;

namespace GflTrainer.Cli.Commands;

/// <summary><c>gfl data synth</c> (write the synthetic shapes set), <c>gfl data check</c> (list every problem of a
/// COCO annotation file and its images; exit 0 clean, 1 with problems), <c>gfl data convert</c> (VOC or YOLO
/// labels -> COCO instances files) and <c>gfl data stats</c> (counts, box sizes after the configured resize and anchor
/// coverage per split).</summary>
public static class DataCommand
{
    public static Command Create()
    {
        var cmd = new Command("data", "Create or check detection data sets");
        cmd.Subcommands.Add(Synth());
        cmd.Subcommands.Add(Check());
        cmd.Subcommands.Add(Convert());
        cmd.Subcommands.Add(Stats());
        return cmd;
    }

    static Command Synth()
    {
        var outDir = new Option<string>("--out") { Description = "Output folder (images/ and annotations/ are created)", Required = true };
        var seed = new Option<int>("--seed") { Description = "Random seed; the same seed writes the same bytes", DefaultValueFactory = _ => 0 };
        var train = new Option<int>("--train") { Description = "Training images", DefaultValueFactory = _ => 200 };
        var val = new Option<int>("--val") { Description = "Validation images", DefaultValueFactory = _ => 50 };
        var size = new Option<int>("--size") { Description = "Image side in pixels", DefaultValueFactory = _ => 320 };
        var png = new Option<bool>("--png") { Description = "Write PNG instead of JPEG" };
        var cmd = new Command("synth", "Write a small COCO-format data set of coloured shapes (rectangle, ellipse, triangle)")
            { outDir, seed, train, val, size, png };
        cmd.SetAction(parse => GlobalOptions.Execute(parse, ctx =>
        {
            var dir = parse.GetValue(outDir)!;
            var (t, v) = SyntheticShapes.Write(dir, new SyntheticShapesOptions
            {
                Seed = parse.GetValue(seed), TrainImages = parse.GetValue(train), ValImages = parse.GetValue(val),
                ImageSize = parse.GetValue(size), Png = parse.GetValue(png),
            });
            ctx.Out.WriteLine($"wrote {dir}: train {parse.GetValue(train)} images / {t} boxes, val {parse.GetValue(val)} images / {v} boxes");
            ctx.Out.WriteLine($"  annotations: {Path.Combine(dir, "annotations", "instances_{train,val}.json")}, images root: {Path.Combine(dir, "images")}");
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    static Command Check()
    {
        var ann = new Option<string>("--ann") { Description = "COCO instances JSON file" };
        var images = new Option<string>("--images") { Description = "Image root (file_name is relative to it)" };
        var config = new Option<string>("--config", "-c") { Description = "Check every split (train, val, test) of this config instead" };
        var set = new Option<string[]>("--set") { Description = "Override a config key (key.path=value)", AllowMultipleArgumentsPerToken = true };
        var workers = new Option<int>("--workers") { Description = "Parallel image decoders", DefaultValueFactory = _ => 2 };
        var cmd = new Command("check", "Report every problem of a COCO annotation file and its images (exit 0 clean, 1 problems)")
            { ann, images, config, set, workers };
        cmd.SetAction(parse => GlobalOptions.Execute(parse, ctx =>
        {
            var targets = new List<(string Name, string Ann, string Images)>();
            if (parse.GetValue(config) is { } cfgPath)
            {
                if (parse.GetValue(ann) is not null || parse.GetValue(images) is not null)
                    throw new GflConfigException("gfl data check: use either --config or --ann/--images");
                var cfg = GflTrainer.Config.ConfigLoader.Load(cfgPath, parse.GetValue(set) ?? []);
                foreach (var (name, split) in new[] { ("train", cfg.Data.Train), ("val", cfg.Data.Val), ("test", cfg.Data.Test) })
                {
                    if (targets.Any(t => t.Ann == split.AnnFile && t.Images == split.ImgPrefix)) continue;
                    if (!File.Exists(split.AnnFile)) throw new GflConfigException($"data.{name}.ann_file {split.AnnFile}: file not found");
                    if (!Directory.Exists(split.ImgPrefix)) throw new GflConfigException($"data.{name}.img_prefix {split.ImgPrefix}: folder not found");
                    targets.Add((name, split.AnnFile, split.ImgPrefix));
                }
            }
            else
            {
                var root = parse.GetValue(images) ?? throw new GflConfigException("gfl data check needs --ann FILE --images DIR, or --config FILE");
                var file = parse.GetValue(ann) ?? throw new GflConfigException("gfl data check needs --ann FILE --images DIR, or --config FILE");
                if (!Directory.Exists(root)) throw new GflConfigException($"--images {root}: folder not found") { Key = "--images" };
                if (!File.Exists(file)) throw new GflConfigException($"--ann {file}: file not found") { Key = "--ann" };
                targets.Add(("data", file, root));
            }
            bool clean = true;
            foreach (var (name, file, root) in targets)
            {
                if (targets.Count > 1) ctx.Out.WriteLine($"== {name}: {file}");
                var report = DataChecker.Run(file, root, parse.GetValue(workers));
                DataChecker.Write(report, ctx.Out);
                clean &= report.Clean;
            }
            return clean ? ExitCodes.Ok : ExitCodes.Failure;
        }));
        return cmd;
    }

    static Command Convert()
    {
        var from = new Option<string>("--from") { Description = "Source format: voc | yolo", Required = true };
        from.AcceptOnlyFromAmong("voc", "yolo");
        var to = new Option<string>("--to") { Description = "Target format (coco only)", DefaultValueFactory = _ => "coco" };
        to.AcceptOnlyFromAmong("coco");
        var src = new Argument<string>("SRC") { Description = "VOC folder (Annotations/, JPEGImages/) or VOCdevkit; YOLO folder (images/, labels/)" };
        var outDir = new Option<string>("--out") { Description = "Output folder (annotations/instances_<split>.json and conversion_report.txt; images are not copied)", Required = true };
        var classes = new Option<string>("--classes") { Description = "Class names, one per line: fixes their order and ids (1..N)" };
        var check = new Option<bool>("--check") { Description = "Run gfl data check on every file written (exit 1 on problems)" };
        var cmd = new Command("convert", "Convert Pascal VOC XML or YOLO txt labels to COCO instances files")
            { from, to, src, outDir, classes, check };
        cmd.SetAction(parse => GlobalOptions.Execute(parse, ctx =>
        {
            var format = parse.GetValue(from) == "voc" ? SourceFormat.Voc : SourceFormat.Yolo;
            var result = DatasetConverter.Run(format, parse.GetValue(src)!, parse.GetValue(outDir)!, parse.GetValue(classes));
            ctx.Out.WriteLine($"{result.Categories.Count} classes: {string.Join(", ", result.Categories.Select(c => c.Name))}");
            foreach (var s in result.Splits)
                ctx.Out.WriteLine($"{s.Split}: {s.Images} images, {s.Boxes} boxes ({s.CrowdBoxes} iscrowd), {s.Skipped} skipped, " +
                                  $"{s.Repaired} repaired -> {s.AnnotationFile}");
            ctx.Out.WriteLine($"image root (data.*.img_prefix): {result.ImageRoot} (images not copied)");
            ctx.Out.WriteLine($"report: {result.ReportFile}");
            if (!parse.GetValue(check)) return ExitCodes.Ok;
            bool clean = true;
            foreach (var s in result.Splits)
            {
                ctx.Out.WriteLine($"== check {s.Split}");
                var report = DataChecker.Run(s.AnnotationFile, result.ImageRoot);
                DataChecker.Write(report, ctx.Out);
                clean &= report.Clean;
            }
            return clean ? ExitCodes.Ok : ExitCodes.Failure;
        }));
        return cmd;
    }

    static Command Stats()
    {
        var config = new Option<string>("--config", "-c") { Description = "Config whose splits, resize and anchors are measured" };
        var set = new Option<string[]>("--set") { Description = "Override a config key (key.path=value)", AllowMultipleArgumentsPerToken = true };
        var split = new Option<string>("--split") { Description = "train, val, test or all (default: all with --config, train with --ann)" };
        var ann = new Option<string>("--ann") { Description = "COCO instances JSON to measure instead of the config's file for --split" };
        var images = new Option<string>("--images") { Description = "Image root of --ann (images are not read: sizes come from the JSON)" };
        var outDir = new Option<string>("--out") { Description = "Folder for stats.json and the PNGs (default: the config's run directory/data_stats, as gfl train uses it; ./data_stats without --config)" };
        var cmd = new Command("stats", "Count images, boxes and classes per split, histogram box sizes after the configured resize, and count " +
            "ground truths that get no positive anchor") { config, set, split, ann, images, outDir };
        cmd.SetAction(parse => GlobalOptions.Execute(parse, ctx =>
        {
            var cfgPath = parse.GetValue(config);
            var file = parse.GetValue(ann);
            if (cfgPath is null && file is null)
                throw new GflConfigException("gfl data stats needs --config FILE, or --ann FILE [--images DIR]");
            // Without a config the defaults (img_scale 1333x800, GFL anchors) apply, with any --set on top.
            var cfg = cfgPath is not null
                ? GflTrainer.Config.ConfigLoader.Load(cfgPath, parse.GetValue(set) ?? [])
                : GflTrainer.Config.ConfigLoader.LoadYaml("", "(defaults)", parse.GetValue(set) ?? []);
            var which = parse.GetValue(split) ?? (file is null ? "all" : "train");
            if (which is not ("train" or "val" or "test" or "all"))
                throw new GflConfigException($"--split {which}: expected train, val, test or all") { Key = "--split" };

            var targets = new List<(string Name, GflTrainer.Config.SplitConfig Split)>();
            if (file is not null)
            {
                if (which == "all") throw new GflConfigException("--ann is one split: name it with --split train, val or test") { Key = "--split" };
                if (!File.Exists(file)) throw new GflConfigException($"--ann {file}: file not found") { Key = "--ann" };
                var root = parse.GetValue(images);
                if (root is not null && !Directory.Exists(root)) throw new GflConfigException($"--images {root}: folder not found") { Key = "--images" };
                targets.Add((which, new GflTrainer.Config.SplitConfig { AnnFile = file, ImgPrefix = root ?? Path.GetDirectoryName(Path.GetFullPath(file))! }));
            }
            else
            {
                foreach (var (name, s) in new[] { ("train", cfg.Data.Train), ("val", cfg.Data.Val), ("test", cfg.Data.Test) })
                {
                    if (which != "all" && which != name) continue;
                    if (targets.FirstOrDefault(t => t.Split.AnnFile == s.AnnFile && t.Split.ImgPrefix == s.ImgPrefix) is { Name: { } same })
                    {
                        ctx.Out.WriteLine($"{name}: the same files as {same}, not repeated");
                        continue;
                    }
                    // 'all' measures the splits that exist (a config may name only its training set); a named split must.
                    if (!File.Exists(s.AnnFile) && which == "all" && name != "train")
                    {
                        ctx.Out.WriteLine($"{name}: data.{name}.ann_file {s.AnnFile} not found, skipped");
                        continue;
                    }
                    targets.Add((name, s));
                }
            }

            // Where gfl train of this config puts its run, so the run's report.html shows these statistics.
            var dir = parse.GetValue(outDir) ?? (cfgPath is not null
                ? Path.Combine(cfg.Runtime.WorkDirFor(cfgPath), GflTrainer.Reporting.RunReport.DataStatsDir)
                : Path.Combine(cfg.Runtime.WorkDir ?? ".", GflTrainer.Reporting.RunReport.DataStatsDir));
            var stats = DatasetStatistics.Compute(cfg, targets);
            GflTrainer.Reporting.DatasetStatisticsReport.Write(stats, ctx.Out);
            var written = GflTrainer.Reporting.DatasetStatisticsReport.Save(stats, dir);
            ctx.Out.WriteLine();
            ctx.Out.WriteLine($"wrote {Path.Combine(dir, "stats.json")} and {written.Count - 1} PNGs in {dir}");
            return ExitCodes.Ok;
        }));
        return cmd;
    }
}
