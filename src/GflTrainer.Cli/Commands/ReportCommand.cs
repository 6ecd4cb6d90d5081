using System.CommandLine;
using GflTrainer.Reporting;

namespace GflTrainer.Cli.Commands;

/// <summary><c>gfl report RUN_DIR</c>: rebuilds a run's plots and report.html from its files (training writes them after
/// every epoch; this is for a run copied from elsewhere, or one made by an older gfl).</summary>
public static class ReportCommand
{
    public static Command Create()
    {
        var dir = new Argument<string>("RUN_DIR") { Description = "A gfl train work directory (holds config.yaml, log.jsonl, eval/)" };
        var cmd = new Command("report", "Rebuild a run's training plots and its self-contained report.html") { dir };
        cmd.SetAction(parse => GlobalOptions.Execute(parse, ctx =>
        {
            var workDir = parse.GetValue(dir)!;
            if (!File.Exists(Path.Combine(workDir, "config.yaml")))
                throw new GflConfigException($"{workDir}: not a gfl run directory (no config.yaml)") { Key = "RUN_DIR" };
            TrainingPlots.Render(workDir);
            ctx.Out.WriteLine(RunReport.Write(workDir));
            return ExitCodes.Ok;
        }));
        return cmd;
    }
}
