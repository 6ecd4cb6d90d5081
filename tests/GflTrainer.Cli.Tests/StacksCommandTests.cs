using System.Diagnostics;
using Xunit;

namespace GflTrainer.Cli.Tests;

/// <summary><c>gfl stacks PID</c> on what it cannot read (the real attach is covered by the watchdog tests, which read
/// the test host's stacks through it).</summary>
public sealed class StacksCommandTests
{
    [Fact]
    public void NoSuchProcess_Exits1_SayingSo()
    {
        var r = CliRunner.RunGfl("stacks", "999999999");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("no process with id 999999999", r.Err);
    }

    [Fact]
    public void ANativeProcess_Exits1_NamingIt()
    {
        using var sleep = Process.Start("sleep", "30");
        try
        {
            var r = CliRunner.RunGfl("stacks", sleep.Id.ToString());
            Assert.Equal(1, r.ExitCode);
            Assert.Contains($"process {sleep.Id} has no .NET runtime loaded", r.Err);
        }
        finally { sleep.Kill(); }
    }
}
