using System.CommandLine;
using Serilog;
using Serilog.Events;
using GflTrainer.Runtime;

namespace GflTrainer.Cli;

/// <summary>Options every command accepts, and the shared run wrapper that turns exceptions into
/// one-line messages and exit codes.</summary>
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
        var other => throw new GflConfigException($"--log-level {other}: expected debug, info, warning or error"),
    };

    /// <summary>Runs a command body with console logging (a run adds its own log files through
    /// <see cref="Logging.AttachRunLog"/>) and maps failures to exit codes.</summary>
    public static int Execute(ParseResult parse, Func<LogEventLevel, int> body)
    {
        LogEventLevel level;
        try { level = ParseLevel(parse.GetValue(LogLevel)); }
        catch (GflConfigException e) { Console.Error.WriteLine($"error: {e.Message}"); return ExitCodes.Usage; }
        Logging.ConfigureConsole(level);
        try
        {
            return body(level);
        }
        catch (GflConfigException e)
        {
            Log.Error("{Message}", e.Message);
            if (level <= LogEventLevel.Debug) Log.Debug(e, "details");
            return ExitCodes.Usage;
        }
        catch (OperationCanceledException)
        {
            Log.Warning("interrupted");
            return ExitCodes.Interrupted;
        }
        catch (Exception e)
        {
            // Errors the user can act on are one line; anything else is a bug and says where to look.
            bool expected = e is GflRuntimeException or Coco.CocoFormatException;
            var msg = expected ? e.Message : $"{e.GetType().Name}: {e.Message}";
            Log.Error("{Message}", msg);
            if (level <= LogEventLevel.Debug) Log.Debug(e, "details");
            else if (!expected) Console.Error.WriteLine("(run with --log-level debug for the stack trace)");
            return ExitCodes.Failure;
        }
        finally
        {
            Log.CloseAndFlush();
        }
    }
}
