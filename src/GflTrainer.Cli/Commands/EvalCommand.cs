using System.CommandLine;
using GflTrainer.Coco;
using GflTrainer.Inference;
using GflTrainer.Reporting;

namespace GflTrainer.Cli.Commands;

/// <summary><c>gfl eval</c>, two modes. Model: <c>--checkpoint PATH [--config FILE] [--split val] [--out-dir DIR]</c>
/// runs inference and writes detections.json + metrics.json. File: <c>--annotations GT.json --detections DETS.json
/// [--out metrics.json]</c> evaluates a results file (drop-in for the usual pycocotools script). ONNX: <c>--onnx MODEL
/// (--config FILE [--split val] | --annotations GT.json --images DIR)</c> evaluates an exported model in ONNX Runtime.
/// All print the 12-line summary (identical to pycocotools) and the per-category AP table.</summary>
public static class EvalCommand
{
    public static Command Create()
    {
        var annotationsOption = new Option<string>("--annotations")
        {
            HelpName = "GT.json",
            Description = "COCO instances JSON with the ground truth (images, categories, annotations)",
        };
        var detectionsOption = new Option<string>("--detections")
        {
            HelpName = "DETS.json",
            Description = "COCO results JSON: [{image_id, category_id, bbox: [x, y, w, h], score}]",
        };
        var outOption = new Option<string>("--out")
        {
            HelpName = "metrics.json",
            Description = "Write the metrics as JSON here (bbox stats, stats list, per-category AP)",
        };

        var checkpointOption = new Option<string>("--checkpoint")
        {
            Description = "Model mode: checkpoint folder (e.g. runs/x/checkpoints/best) or a converted weights file",
        };
        var configOption = new Option<string>("--config", "-c")
        {
            Description = "Model mode: config (default: the one stored in the checkpoint; required for a bare weights file)",
        };
        var splitOption = new Option<string>("--split") { Description = "Model mode: val | test | train", DefaultValueFactory = _ => "val" };
        var outDirOption = new Option<string>("--out-dir") { Description = "Model mode: folder for detections.json and metrics.json" };
        var onnxOption = new Option<string>("--onnx")
        {
            HelpName = "MODEL.onnx",
            Description = "ONNX mode: a model written by gfl export, run in ONNX Runtime over --config's split or --annotations/--images",
        };
        var imagesOption = new Option<string>("--images")
        {
            HelpName = "DIR",
            Description = "The folder the annotations' file_names are relative to: ONNX mode without --config; file mode: draw the mosaic",
        };
        var noPlotsOption = new Option<bool>("--no-plots") { Description = "Metrics only: no PR curves, confusion matrix, AP bars or mosaic" };
        var setOption = new Option<string[]>("--set") { Description = "Model mode: override a config key (key.path=value)", AllowMultipleArgumentsPerToken = true };

        var cmd = new Command("eval", "COCO bbox evaluation (pycocotools-equal): of a model (--checkpoint) or of a detections file (--annotations --detections)");
        cmd.Options.Add(annotationsOption);
        cmd.Options.Add(detectionsOption);
        cmd.Options.Add(outOption);
        cmd.Options.Add(checkpointOption);
        cmd.Options.Add(configOption);
        cmd.Options.Add(splitOption);
        cmd.Options.Add(outDirOption);
        cmd.Options.Add(setOption);
        cmd.Options.Add(onnxOption);
        cmd.Options.Add(imagesOption);
        cmd.Options.Add(noPlotsOption);
        cmd.SetAction(parse => GlobalOptions.Execute(parse, ctx =>
        {
            var annotations = parse.GetValue(annotationsOption);
            var detections = parse.GetValue(detectionsOption);
            var checkpoint = parse.GetValue(checkpointOption);
            var onnx = parse.GetValue(onnxOption);
            if (onnx is not null)
            {
                if (checkpoint is not null || detections is not null)
                    throw new GflConfigException("gfl eval --onnx: --checkpoint and --detections belong to the other modes") { Key = "--onnx" };
                Print(ctx, EvalRun.Execute(new EvalRequest("", parse.GetValue(configOption), parse.GetValue(setOption) ?? [],
                    parse.GetValue(splitOption) ?? "val", parse.GetValue(outDirOption), Onnx: onnx, Annotations: annotations,
                    Images: parse.GetValue(imagesOption)), ctx.Log));
                return ExitCodes.Ok;
            }
            if (checkpoint is not null)
            {
                if (annotations is not null || detections is not null)
                    throw new GflConfigException("gfl eval: use either --checkpoint (model mode) or --annotations/--detections (file mode), not both");
                var metrics = EvalRun.Execute(new EvalRequest(checkpoint, parse.GetValue(configOption), parse.GetValue(setOption) ?? [],
                    parse.GetValue(splitOption) ?? "val", parse.GetValue(outDirOption), parse.GetValue(GlobalOptions.Device)), ctx.Log);
                Print(ctx, metrics);
                return ExitCodes.Ok;
            }
            if (annotations is null || detections is null)
                throw new GflConfigException("gfl eval needs --checkpoint PATH, --onnx MODEL, or --annotations GT.json and --detections DETS.json");
            var plots = parse.GetValue(noPlotsOption) ? null : EvaluationPlotOptions.FromConfig(new GflTrainer.Config.EvaluationConfig());
            Print(ctx, EvalRun.ExecuteFiles(annotations, detections, parse.GetValue(outOption), parse.GetValue(imagesOption), plots, ctx.Log));
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    static void Print(CommandContext ctx, CocoMetrics metrics)
    {
        foreach (var warning in metrics.Warnings) ctx.Log.Warning("{Warning}", warning);
        foreach (var line in metrics.SummaryLines) ctx.Out.WriteLine(line);
        ctx.Out.WriteLine();
        ctx.Out.WriteLine("Per-category bbox AP@[.50:.95]:");
        foreach (var line in metrics.PerCategoryTable()) ctx.Out.WriteLine(line);
    }
}
