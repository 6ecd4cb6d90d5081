using System.CommandLine;
using Serilog.Core;
using Serilog.Events;
using GflTrainer.Runtime;

namespace GflTrainer.Cli;

/// <summary>Options every command accepts, and the shared run wrapper that gives a command its writers and logger
/// and turns its exceptions into one-line messages and exit codes (<see cref="ErrorReport"/>).</summary>
public static class GlobalOptions
{
    public static readonly Option<string> Device = new("--device")
    {
        Description = "Device: auto | cpu | cuda | cuda:N",
        DefaultValueFactory = _ => "auto",
        Recursive = true,
    };

    public static readonly Option<string> LogLevel = new("--log-level")
    {
        Description = "Log level: debug | info | warning | error",
        DefaultValueFactory = _ => "info",
        Recursive = true,
    };

    public static LogEventLevel ParseLevel(string? s) => (s ?? "info").ToLowerInvariant() switch
    {
        "debug" or "verbose" or "trace" => LogEventLevel.Debug,
        "info" or "information" => LogEventLevel.Information,
        "warn" or "warning" => LogEventLevel.Warning,
        "error" => LogEventLevel.Error,
        var other => throw new GflConfigException($"--log-level {other}: expected debug, info, warning or error") { Key = "--log-level" },
    };

    /// <summary>Runs a command body with a console logger on the invocation's writers and maps failures to exit
    /// codes.</summary>
    public static int Execute(ParseResult parse, Func<CommandContext, int> body)
    {
        var invocation = parse.InvocationConfiguration;
        TextWriter output = invocation.Output, error = invocation.Error;
        LogEventLevel level;
        try { level = ParseLevel(parse.GetValue(LogLevel)); }
        catch (GflConfigException e) { error.WriteLine($"error: {e.Message}"); return ExitCodes.Usage; }
        var levels = new LoggingLevelSwitch(level);
        using var log = Logging.ForConsole(levels, output, error);
        // A live progress bar only on the process's own interactive stderr, never on a test's writer or a log file.
        bool interactive = ReferenceEquals(error, Console.Error) && !Console.IsErrorRedirected && !Console.IsOutputRedirected;
        var context = new CommandContext(output, error, log, levels, interactive ? error : null);
        try
        {
            return body(context);
        }
        catch (Exception e)
        {
            var report = ErrorReport.Of(e);
            if (report.ExitCode == ExitCodes.Interrupted) log.Warning("{Message}", report.Message);
            else log.Error("{Message}", report.Message);
            if (context.Level <= LogEventLevel.Debug) log.Debug(e, "details");
            else if (report.IsBug) error.WriteLine("(run with --log-level debug for the stack trace)");
            return report.ExitCode;
        }
    }
}
