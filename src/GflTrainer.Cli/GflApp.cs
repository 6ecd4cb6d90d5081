using System.CommandLine;
using GflTrainer.Cli.Commands;

namespace GflTrainer.Cli;

/// <summary>Builds the command tree. Each command lives in Commands/ and only parses arguments and
/// calls the library; exit codes: 0 ok, 2 usage/config error, 1 runtime failure, 130 interrupted.</summary>
public static class GflApp
{
    public static RootCommand Build()
    {
        var root = new RootCommand("gfl: train and evaluate GFL (Generalized Focal Loss) dense object detectors");
        root.Options.Add(GlobalOptions.Device);
        root.Options.Add(GlobalOptions.LogLevel);
        root.Subcommands.Add(InfoCommand.Create());
        root.Subcommands.Add(ConfigCommand.Create());
        root.Subcommands.Add(DataCommand.Create());
        root.Subcommands.Add(EvalCommand.Create());
        root.Subcommands.Add(TrainCommand.Create());
        root.Subcommands.Add(PredictCommand.Create());
        root.Subcommands.Add(ReportCommand.Create());
        root.Subcommands.Add(ExportCommand.Create());
        root.Subcommands.Add(BenchCommand.Create());
        root.Subcommands.Add(DoctorCommand.Create());
        root.Subcommands.Add(StacksCommand.Create());
        return root;
    }

    /// <param name="output">stdout of the invocation (default: the console); results and information go here.</param>
    /// <param name="error">stderr of the invocation (default: the console); warnings and errors go here.</param>
    public static int Run(string[] args, TextWriter? output = null, TextWriter? error = null)
    {
        output ??= Console.Out;
        error ??= Console.Error;
        var root = Build();
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var e in parse.Errors) error.WriteLine($"error: {e.Message}");
            error.WriteLine("Run 'gfl --help' for usage.");
            return ExitCodes.Usage;
        }
        return parse.Invoke(new InvocationConfiguration { Output = output, Error = error });
    }
}

public static class ExitCodes
{
    public const int Ok = 0, Failure = 1, Usage = 2, Interrupted = 130, Terminated = 143;

    /// <summary>SIGUSR1 (Slurm's <c>--signal=USR1@T</c> warning before a preemption kill): state saved, 128 + 10.</summary>
    public const int Preempted = 138;

    /// <summary>Stopped by train.watchdog after an iteration hung; <c>last</c> saved when the hang was in data loading.</summary>
    public const int Hung = Training.TrainRun.HungExitCode;
}
