using Serilog;
using Serilog.Core;
using Serilog.Events;
using Serilog.Formatting.Compact;
using Serilog.Formatting.Display;

namespace GflTrainer.Runtime;

/// <summary>Serilog set-up as instances handed to whoever logs (no static logger is set): a command's console logger
/// on the writers it is given, and a run's logger that adds its files in the work directory.</summary>
public static class Logging
{
    const string ConsoleTemplate = "{Timestamp:HH:mm:ss} [{Level:u3}] {Message:lj}{NewLine}";

    /// <summary>A command's console logger: debug and information lines to <paramref name="output"/>, warnings and
    /// errors to <paramref name="error"/> (so a redirected stdout keeps only what the command reports).</summary>
    public static Logger ForConsole(LoggingLevelSwitch level, TextWriter output, TextWriter error) => new LoggerConfiguration()
        .MinimumLevel.ControlledBy(level)
        .WriteTo.Sink(new SplitWriterSink(output, error))
        .CreateLogger();

    /// <summary>A run's logger: everything <paramref name="console"/> shows, also as JSON lines in
    /// <paramref name="jsonFile"/> and as text in <paramref name="humanFile"/>, at the console's level.</summary>
    /// <returns>disposing it closes the files (the console logger stays usable).</returns>
    public static Logger WithRunFiles(ILogger console, string jsonFile, string? humanFile = null)
    {
        var cfg = new LoggerConfiguration()
            .MinimumLevel.Is(MinimumLevel(console))
            .WriteTo.Logger(console)
            .WriteTo.File(new CompactJsonFormatter(), jsonFile);
        if (humanFile != null)
            cfg = cfg.WriteTo.File(humanFile, outputTemplate: "{Timestamp:yyyy-MM-dd HH:mm:ss.fff} [{Level:u3}] {Message:lj}{NewLine}{Exception}");
        return cfg.CreateLogger();
    }

    /// <summary>The lowest level <paramref name="log"/> writes (Fatal when it writes nothing lower).</summary>
    /// <summary>The console of a data-parallel rank other than 0: warnings and errors only (rank 0 reports the run, as
    /// mmdetection's logger does; the launcher's output tags say which rank spoke).</summary>
    public static Logger ForOtherRank(ILogger console) => new LoggerConfiguration()
        .MinimumLevel.Warning()
        .WriteTo.Logger(console)
        .CreateLogger();

    public static LogEventLevel MinimumLevel(ILogger log) =>
        Enum.GetValues<LogEventLevel>().FirstOrDefault(log.IsEnabled, LogEventLevel.Fatal);

    /// <summary>Renders each event with the console template onto stdout (below Warning) or stderr.</summary>
    private sealed class SplitWriterSink(TextWriter output, TextWriter error) : ILogEventSink
    {
        private readonly MessageTemplateTextFormatter _format = new(ConsoleTemplate);

        public void Emit(LogEvent e)
        {
            var writer = e.Level < LogEventLevel.Warning ? output : error;
            lock (writer)
            {
                _format.Format(e, writer);
                writer.Flush();
            }
        }
    }
}
