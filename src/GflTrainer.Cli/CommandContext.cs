using Serilog;
using Serilog.Core;
using Serilog.Events;

namespace GflTrainer.Cli;

/// <summary>What a command body works with, instead of the process-wide Console and a static logger: the invocation's
/// writers (the console, or a test's) and a logger on them at <c>--log-level</c>. Commands print results to
/// <see cref="Out"/> and progress, warnings and errors through <see cref="Log"/>.</summary>
/// <param name="Levels">the logger's level: <c>--log-level</c>, which a command with a config may change to the config's
/// <c>runtime.log_level</c> when the option was not given.</param>
/// <param name="Terminal">the stderr writer when it is an interactive terminal (live progress bars), else null.</param>
public sealed record CommandContext(TextWriter Out, TextWriter Error, ILogger Log, LoggingLevelSwitch Levels, TextWriter? Terminal)
{
    /// <summary>The level the logger writes at now.</summary>
    public LogEventLevel Level => Levels.MinimumLevel;
}
