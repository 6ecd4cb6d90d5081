using GflTrainer.Cli;
using Xunit;

namespace GflTrainer.Tests.Support;

/// <summary>Tests that swap the process-wide Console writers run in this collection, alone and one at a time.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ConsoleCaptureCollection
{
    public const string Name = "ConsoleCapture";
}

/// <summary>Runs the CLI in-process with stdout and stderr captured (use inside <see cref="ConsoleCaptureCollection"/>).</summary>
public static class ConsoleCapture
{
    public sealed record Result(int ExitCode, string Out, string Err);

    public static Result RunGfl(params string[] args)
    {
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        Console.SetOut(stdout);
        Console.SetError(stderr);
        try
        {
            int code = GflApp.Run(args);
            return new Result(code, stdout.ToString(), stderr.ToString());
        }
        finally
        {
            Console.SetOut(oldOut);
            Console.SetError(oldErr);
        }
    }
}
