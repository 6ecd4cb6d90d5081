using Serilog;
using Serilog.Core;
using Serilog.Events;
using Serilog.Formatting.Compact;

namespace GflTrainer.Runtime;

/// <summary>Serilog set-up: human-readable console output, plus a JSON-lines file in a run's work directory.</summary>
public static class Logging
{
    static readonly LoggingLevelSwitch Level = new(LogEventLevel.Information);
    static string? _consoleOnlyTemplate;

    public static void ConfigureConsole(LogEventLevel level)
    {
        Level.MinimumLevel = level;
        _consoleOnlyTemplate = "{Timestamp:HH:mm:ss} [{Level:u3}] {Message:lj}{NewLine}";
        Log.Logger = new LoggerConfiguration()
            .MinimumLevel.ControlledBy(Level)
            .WriteTo.Console(outputTemplate: _consoleOnlyTemplate, standardErrorFromLevel: LogEventLevel.Warning)
            .CreateLogger();
    }

    /// <summary>Adds a human log (<paramref name="humanFile"/>) and a JSON-lines log (<paramref name="jsonFile"/>)
    /// next to the console sink. Call once per run after the work directory exists.</summary>
    /// <returns>disposing it closes the run's files and restores the previous logger.</returns>
    public static IDisposable AttachRunLog(string jsonFile, string? humanFile = null)
    {
        var cfg = new LoggerConfiguration()
            .MinimumLevel.ControlledBy(Level)
            .WriteTo.Console(outputTemplate: _consoleOnlyTemplate ?? "{Timestamp:HH:mm:ss} [{Level:u3}] {Message:lj}{NewLine}",
                standardErrorFromLevel: LogEventLevel.Warning)
            .WriteTo.File(new CompactJsonFormatter(), jsonFile);
        if (humanFile != null)
            cfg = cfg.WriteTo.File(humanFile, outputTemplate: "{Timestamp:yyyy-MM-dd HH:mm:ss.fff} [{Level:u3}] {Message:lj}{NewLine}{Exception}");
        var previous = Log.Logger;
        var run = cfg.CreateLogger();
        Log.Logger = run;
        return new Restore(previous, run);
    }

    private sealed class Restore(ILogger previous, Logger run) : IDisposable
    {
        public void Dispose()
        {
            if (ReferenceEquals(Log.Logger, run)) Log.Logger = previous;
            run.Dispose();
        }
    }
}
