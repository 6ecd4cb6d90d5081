using Serilog;
using Serilog.Events;

namespace GflTrainer.Cli;

/// <summary>What a command body works with, instead of the process-wide Console and a static logger: the invocation's
/// writers (the console, or a test's) and a logger on them at <c>--log-level</c>. Commands print results to
/// <see cref="Out"/> and progress, warnings and errors through <see cref="Log"/>.</summary>
/// <param name="Terminal">the stderr writer when it is an interactive terminal (live progress bars), else null.</param>
public sealed record CommandContext(TextWriter Out, TextWriter Error, ILogger Log, LogEventLevel Level, TextWriter? Terminal);
