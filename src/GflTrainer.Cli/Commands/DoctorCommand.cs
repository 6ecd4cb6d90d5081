using System.CommandLine;
using GflTrainer.Config;
using GflTrainer.Diagnostics;
using GflTrainer.Runtime.Native;

namespace GflTrainer.Cli.Commands;

/// <summary><c>gfl doctor [--config FILE] [--r50] [--record-cpuid FILE]</c>: checks that CPU training computes
/// correct gradients on this machine (exit 0) or lists what is wrong (exit 1).</summary>
public static class DoctorCommand
{
    public static Command Create()
    {
        var config = new Option<FileInfo>("--config", "-c") { Description = "Check the convolutions of this config's model (default: the R50-GFL reference)" };
        var set = ConfigCommand.SetOption();
        var r50 = new Option<bool>("--r50") { Description = "Also run an R50-GFL forward and backward (256x256, batch 2)" };
        var record = new Option<FileInfo>("--record-cpuid") { Description = "Write this CPU's CPUID answers (cache leaves) as JSON for a bug report, and exit" };
        var cmd = new Command("doctor", "Check libtorch's CPU convolution gradients on this machine against float64");
        cmd.Options.Add(config);
        cmd.Options.Add(set);
        cmd.Options.Add(r50);
        cmd.Options.Add(record);
        cmd.SetAction(parse => GlobalOptions.Execute(parse, ctx =>
        {
            if (parse.GetValue(record) is { } file)
            {
                CpuidRecording.Record(HardwareCpuid.Instance, Environment.MachineName).Save(file.FullName);
                ctx.Out.WriteLine($"CPUID answers written to {file.FullName}");
                return ExitCodes.Ok;
            }
            var model = parse.GetValue(config) is { } f
                ? ConfigLoader.Load(f.FullName, parse.GetValue(set) ?? []).Model
                : new ModelConfig();
            return CpuDoctor.Run(new CpuDoctor.Options(model, parse.GetValue(r50)), ctx.Out, ctx.Log) ? ExitCodes.Ok : ExitCodes.Failure;
        }));
        return cmd;
    }
}
