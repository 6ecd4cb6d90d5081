using System.CommandLine;
using GflTrainer.Evaluation;
using Serilog;

namespace GflTrainer.Cli.Commands;

/// <summary><c>gfl eval --annotations GT.json --detections DETS.json [--out metrics.json]</c>: COCO bbox evaluation
/// of a results file, equal to pycocotools. Prints the 12-line summary and the per-category AP table and writes
/// metrics.json when asked. The command is organised by input mode so that evaluating a model (config +
/// checkpoint) can be added next to the file mode.</summary>
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

        var cmd = new Command("eval", "COCO bbox evaluation (pycocotools-equal) of a detections file against annotations");
        cmd.Options.Add(annotationsOption);
        cmd.Options.Add(detectionsOption);
        cmd.Options.Add(outOption);
        cmd.SetAction(parse => GlobalOptions.Execute(parse, _ =>
        {
            var annotations = parse.GetValue(annotationsOption);
            var detections = parse.GetValue(detectionsOption);
            if (annotations is null || detections is null)
                throw new GflConfigException("gfl eval needs --annotations GT.json and --detections DETS.json");
            return EvaluateFiles(annotations, detections, parse.GetValue(outOption));
        }));
        return cmd;
    }

    static int EvaluateFiles(string annotationsPath, string detectionsPath, string? outPath)
    {
        var metrics = CocoEvaluator.EvaluateFiles(annotationsPath, detectionsPath);
        foreach (var warning in metrics.Warnings) Log.Warning("{Warning}", warning);
        foreach (var line in metrics.SummaryLines) Console.WriteLine(line);
        Console.WriteLine();
        Console.WriteLine("Per-category bbox AP@[.50:.95]:");
        foreach (var line in metrics.PerCategoryTable()) Console.WriteLine(line);
        if (outPath is not null)
        {
            try
            {
                var dir = Path.GetDirectoryName(outPath);
                if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
                File.WriteAllText(outPath, metrics.ToJson());
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new GflRuntimeException($"{outPath}: cannot write metrics: {e.Message}", e);
            }
            Log.Information("metrics written to {Path}", outPath);
        }
        return ExitCodes.Ok;
    }
}
