using System.CommandLine;
using GflTrainer.Export;

namespace GflTrainer.Cli.Commands;

/// <summary><c>gfl export --checkpoint PATH [--config FILE] --out model.onnx</c>: the trained detector as an ONNX model
/// for ONNX Runtime or TensorRT (docs/export.md).</summary>
public static class ExportCommand
{
    public static Command Create()
    {
        var checkpoint = new Option<string>("--checkpoint") { Description = "gfl checkpoint folder, or a weights file with --config", Required = true };
        var config = new Option<string?>("--config", "-c") { Description = "Config (default: the one stored in the checkpoint)" };
        var set = ConfigCommand.SetOption();
        var output = new Option<string>("--out", "-o") { Description = "ONNX file to write (a .sample.safetensors goes beside it)", Required = true };
        var format = new Option<string>("--format") { Description = "Export format: onnx", DefaultValueFactory = _ => "onnx" };
        var fp16 = new Option<bool>("--fp16") { Description = "Store the weights as float16 (half the file); computation and I/O stay float32" };
        var nms = new Option<bool>("--nms") { Description = "Post-processing in the graph (score threshold, per-class NMS, top-k): outputs dets and labels" };
        var cmd = new Command("export", "Export a trained detector as an ONNX model (opset 17) with decoded boxes and scores")
            { checkpoint, config, set, output, format, nms, fp16 };
        cmd.SetAction(parse => GlobalOptions.Execute(parse, ctx =>
        {
            var r = ExportRun.Execute(new ExportRequest(parse.GetValue(checkpoint)!, parse.GetValue(config), parse.GetValue(set) ?? [],
                parse.GetValue(output)!, parse.GetValue(format)!, parse.GetValue(nms), parse.GetValue(fp16)), ctx.Log);
            ctx.Out.WriteLine($"{r.Model} ({r.Bytes / 1048576.0:F1} MB)");
            ctx.Out.WriteLine($"{r.Sample}");
            return ExitCodes.Ok;
        }));
        return cmd;
    }
}
