using System.CommandLine;
using GflTrainer.Inference;

namespace GflTrainer.Cli.Commands;

/// <summary><c>gfl predict --checkpoint PATH | --onnx MODEL --input IMAGE|DIR [--out DIR] [--score-thr 0.3]</c>.</summary>
public static class PredictCommand
{
    public static Command Create()
    {
        var checkpoint = new Option<string?>("--checkpoint") { Description = "Checkpoint folder (e.g. runs/x/checkpoints/best) or weights file" };
        var onnx = new Option<string?>("--onnx") { Description = "A model written by gfl export, run in ONNX Runtime (CPU) instead of a checkpoint" };
        var input = new Option<string>("--input", "-i") { Description = "An image or a folder of images", Required = true };
        var outDir = new Option<string>("--out", "-o") { Description = "Output folder", DefaultValueFactory = _ => "predictions" };
        var scoreThr = new Option<double>("--score-thr") { Description = "Minimum score to draw and export", DefaultValueFactory = _ => 0.3 };
        var config = new Option<string?>("--config", "-c") { Description = "Config (needed for a bare weights file; otherwise the checkpoint's own)" };
        var set = new Option<string[]>("--set") { Description = "Override a config key: key.path=value", AllowMultipleArgumentsPerToken = true };
        var cmd = new Command("predict", "Detect objects in images: JSON per image and an annotated copy")
            { checkpoint, onnx, input, outDir, scoreThr, config, set };
        cmd.SetAction(parse => GlobalOptions.Execute(parse, ctx =>
        {
            double thr = parse.GetValue(scoreThr);
            if (thr is < 0 or > 1) throw new GflConfigException($"--score-thr {thr}: expected a value in [0, 1]") { Key = "--score-thr" };
            var (ckpt, model) = (parse.GetValue(checkpoint), parse.GetValue(onnx));
            if ((ckpt is null) == (model is null))
                throw new GflConfigException("give either --checkpoint or --onnx") { Key = ckpt is null ? "--checkpoint" : "--onnx" };
            PredictRun.Execute(new PredictRequest(ckpt ?? "", parse.GetValue(input)!, parse.GetValue(outDir)!,
                thr, parse.GetValue(config), parse.GetValue(set) ?? [], parse.GetValue(GlobalOptions.Device), model), ctx.Log);
            return ExitCodes.Ok;
        }));
        return cmd;
    }
}
