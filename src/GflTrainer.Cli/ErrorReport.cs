using GflTrainer.Coco;

namespace GflTrainer.Cli;

/// <summary>The one mapping from an exception to what the user sees and the exit code: configuration and usage
/// errors exit 2, failures the user can act on (bad data, checkpoint, non-finite loss) exit 1 with their one-line
/// message, an interrupt exits 130; anything else is a bug in gfl: exit 1 with the exception type and a pointer to the
/// stack trace.</summary>
/// <param name="IsBug">not one of gfl's own error types: the message alone may not say enough.</param>
public sealed record ErrorReport(int ExitCode, string Message, bool IsBug)
{
    public static ErrorReport Of(Exception e) => e switch
    {
        GflConfigException => new(ExitCodes.Usage, e.Message, false),
        OperationCanceledException => new(ExitCodes.Interrupted, "interrupted", false),
        GflRuntimeException or CocoFormatException => new(ExitCodes.Failure, e.Message, false),
        // A full disk or quota while writing a log, an evaluation or a plot (checkpoint writes raise DiskFullException
        // with the space figures); .NET's message names the file.
        IOException io when Runtime.DiskSpace.IsOutOfSpace(io) => new(ExitCodes.Failure, $"disk full: {io.Message}", false),
        _ => new(ExitCodes.Failure, $"{e.GetType().Name}: {e.Message}", true),
    };
}
