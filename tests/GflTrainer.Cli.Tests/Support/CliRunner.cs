using GflTrainer.Cli;

namespace GflTrainer.Cli.Tests;

/// <summary>Runs the CLI in-process with its own stdout and stderr writers (<see cref="GflApp.Run"/> takes them; nothing
/// process-wide is swapped, so tests using this run in parallel).</summary>
public static class CliRunner
{
    public sealed record Result(int ExitCode, string Out, string Err)
    {
        /// <summary>Both streams, stdout first.</summary>
        public string All => Out + Err;
    }

    public static Result RunGfl(params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        int code = GflApp.Run(args, stdout, stderr);
        return new Result(code, stdout.ToString(), stderr.ToString());
    }
}
