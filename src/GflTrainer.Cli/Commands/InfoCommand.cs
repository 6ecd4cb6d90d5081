using System.CommandLine;
using System.Reflection;
using GflTrainer.Runtime;

namespace GflTrainer.Cli.Commands;

/// <summary><c>gfl info</c>: versions, CUDA availability and threads, so a bug report carries them.</summary>
public static class InfoCommand
{
    public static Command Create()
    {
        var cmd = new Command("info", "Print gfl, TorchSharp and libtorch versions, CUDA devices and threads");
        cmd.SetAction(parse => GlobalOptions.Execute(parse, ctx =>
        {
            var gfl = typeof(GflApp).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "?";
            RuntimeInfo.Write(ctx.Out, gfl, parse.GetValue(GlobalOptions.Device), ctx.Log);
            return ExitCodes.Ok;
        }));
        return cmd;
    }
}
