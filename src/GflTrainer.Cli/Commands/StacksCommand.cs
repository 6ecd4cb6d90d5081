using System.CommandLine;
using GflTrainer.Runtime;

namespace GflTrainer.Cli.Commands;

/// <summary><c>gfl stacks PID</c>: the managed call stacks of every thread of a running gfl (or any .NET process of the
/// same user), for a run that looks stuck. The training watchdog runs it on itself before it stops a hung run.</summary>
public static class StacksCommand
{
    public static Command Create()
    {
        var pid = new Argument<int>("pid") { Description = "Process id of the .NET process" };
        var cmd = new Command("stacks", "Print the managed stacks of all threads of a running process (suspends it briefly)") { pid };
        cmd.SetAction(parse => GlobalOptions.Execute(parse, ctx =>
        {
            IReadOnlyList<string> lines;
            try { lines = ManagedStacks.Read(parse.GetValue(pid)); }
            catch (InvalidOperationException e)
            {
                ctx.Error.WriteLine(e.Message);
                return ExitCodes.Failure;
            }
            foreach (var line in lines) ctx.Out.WriteLine(line);
            return ExitCodes.Ok;
        }));
        return cmd;
    }
}
