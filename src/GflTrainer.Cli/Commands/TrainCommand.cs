using System.CommandLine;
using System.Runtime.InteropServices;
using GflTrainer.Config;
using GflTrainer.Training;

namespace GflTrainer.Cli.Commands;

/// <summary><c>gfl train --config FILE [--work-dir DIR] [--set k=v ...] [--resume [PATH]] [--auto-resume]
/// [--resume-changed]</c>.</summary>
public static class TrainCommand
{
    public static Command Create()
    {
        var config = new Option<string>("--config", "-c") { Description = "YAML config file", Required = true };
        var workDir = new Option<string?>("--work-dir") { Description = "Run directory (default: runtime.work_dir or runs/<config name>)" };
        var set = new Option<string[]>("--set") { Description = "Override a config key: key.path=value (repeatable)", AllowMultipleArgumentsPerToken = true };
        var resume = new Option<string?>("--resume")
        {
            Description = "Resume from the work dir's last checkpoint, or from PATH",
            Arity = ArgumentArity.ZeroOrOne,
        };
        var autoResume = new Option<bool>("--auto-resume") { Description = "Resume if a last checkpoint exists, else start (for scheduled jobs)" };
        var resumeChanged = new Option<bool>("--resume-changed")
        {
            Description = "Resume although the config, training data or versions differ from the checkpoint's run (listed, then recorded in the run)",
        };
        var cmd = new Command("train", "Train a GFL detector") { config, workDir, set, resume, autoResume, resumeChanged };
        cmd.SetAction(parse => GlobalOptions.Execute(parse, ctx =>
        {
            // Loaded here, before anything is written: runtime.log_level applies (unless --log-level was given) from the
            // run's first line on, and a config error is reported before a work dir exists.
            var loaded = ConfigLoader.Load(parse.GetValue(config)!, parse.GetValue(set) ?? []);
            ctx.Levels.MinimumLevel = ConfigCommand.LogLevel(parse, loaded);
            string? resumeValue = parse.GetResult(resume) is null ? null : parse.GetValue(resume) ?? "";
            var request = new TrainRequest(parse.GetValue(config)!, parse.GetValue(set) ?? [], parse.GetValue(workDir),
                resumeValue, parse.GetValue(autoResume), parse.GetValue(GlobalOptions.Device), parse.GetValue(resumeChanged), loaded);
            using var cts = new CancellationTokenSource();
            int signalExit = ExitCodes.Interrupted;
            // SIGINT/SIGTERM/SIGUSR1: finish the current iteration, save `last`, exit 130/143/138. A second signal kills
            // (the checkpoint swap is atomic, so a kill during the save leaves the previous `last`).
            PosixSignalRegistration Register(PosixSignal sig, int code) => PosixSignalRegistration.Create(sig, signal =>
            {
                if (cts.IsCancellationRequested) return;
                signal.Cancel = true;
                signalExit = code;
                ctx.Error.WriteLine($"\n{(sig == (PosixSignal)10 ? "SIGUSR1" : sig)}: stopping after the current iteration (send again to kill)");
                cts.Cancel();
            });
            using var onInt = Register(PosixSignal.SIGINT, ExitCodes.Interrupted);
            using var onTerm = Register(PosixSignal.SIGTERM, ExitCodes.Terminated);
            // SIGUSR1 has no PosixSignal name; .NET takes the raw Linux number (10) cast to the enum.
            using var onUsr1 = OperatingSystem.IsLinux() ? Register((PosixSignal)10, ExitCodes.Preempted) : null;
            try
            {
                TrainRun.Execute(request, ctx.Log, ctx.Terminal, cts.Token);
                return ExitCodes.Ok;
            }
            catch (OperationCanceledException e)
            {
                ctx.Log.Warning("{Message}", e.Message);
                return signalExit;
            }
        }));
        return cmd;
    }
}
