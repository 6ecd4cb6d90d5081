using GflTrainer.Tests.Config;
using GflTrainer.Training;
using Xunit;

namespace GflTrainer.Cli.Tests;

public sealed class TrainCommandTests
{
    /// <summary><c>runtime.log_level</c> sets what <c>gfl train</c> prints unless <c>--log-level</c> is given. The run
    /// stops at its missing annotation file, after its first info line ("gfl train CONFIG -> WORKDIR").</summary>
    [Fact]
    public void RuntimeLogLevel_AppliesUnlessTheCommandLineGivesOne()
    {
        using var dir = new TempConfigDir();
        var config = dir.Write("quiet.yaml", $$"""
            runtime: { log_level: warning, device: cpu, work_dir: {{dir.Root}}/run }
            data:
              train: { ann_file: {{dir.Root}}/missing.json, img_prefix: {{dir.Root}}/ }
            """);

        var trainLog = Path.Combine(dir.Root, "run", "train.log");
        string Logged() => File.Exists(trainLog) ? File.ReadAllText(trainLog) : "";

        var quiet = CliRunner.RunGfl("train", "--config", config);
        // The run's own log file follows the same level.
        Assert.DoesNotContain("gfl train", Logged());
        var loud = CliRunner.RunGfl("train", "--config", config, "--log-level", "info");

        Assert.Equal(2, quiet.ExitCode);
        Assert.Equal(quiet.ExitCode, loud.ExitCode);
        Assert.Contains("missing.json", quiet.Err);
        Assert.DoesNotContain("gfl train", quiet.Out);
        Assert.Contains("gfl train", loud.Out);
        Assert.Contains("gfl train", Logged());
    }

    /// <summary>A second <c>gfl train</c> on a work dir whose lock is held stops with exit code 2 and the holder's
    /// pid, before writing anything there. Without the lock the run would also exit 2 (its annotation file is
    /// missing), so the message and the untouched work dir are what this checks.</summary>
    [Fact]
    public void WorkDirLockedByAnotherRun_Exits2_NamingTheHolder_AndWritesNothing()
    {
        using var dir = new TempConfigDir();
        var config = dir.Write("locked.yaml", $$"""
            runtime: { device: cpu }
            data:
              train: { ann_file: {{dir.Root}}/missing.json, img_prefix: {{dir.Root}}/ }
            """);
        var work = Directory.CreateDirectory(Path.Combine(dir.Root, "run")).FullName;

        CliRunner.Result r;
        using (WorkDirLock.Acquire(work, Serilog.Core.Logger.None))
            r = CliRunner.RunGfl("train", "--config", config, "--work-dir", work);

        Assert.Equal(2, r.ExitCode);
        Assert.Contains($"work dir {work} is locked by pid {Environment.ProcessId} on host {Environment.MachineName}", r.Err);
        Assert.Equal([WorkDirLock.FileName], Directory.GetFileSystemEntries(work).Select(Path.GetFileName));
    }
}
