using GflTrainer.Coco;
using Xunit;

namespace GflTrainer.Cli.Tests;

/// <summary>The one mapping from exceptions to exit codes and messages, and the CLI's independence from process-wide
/// writers.</summary>
public sealed class ErrorReportTests
{
    [Fact]
    public void EachErrorType_MapsToItsExitCode()
    {
        Assert.Equal(new ErrorReport(ExitCodes.Usage, "train.amp: no", false),
            ErrorReport.Of(new GflConfigException("train.amp: no") { Key = "train.amp" }));
        Assert.Equal(new ErrorReport(ExitCodes.Failure, "a.json:3: bad", false), ErrorReport.Of(new DataFileException("a.json", "bad", 3)));
        Assert.Equal(new ErrorReport(ExitCodes.Failure, "ck: torn", false), ErrorReport.Of(new CheckpointException("ck", "torn", "w")));
        Assert.Equal(new ErrorReport(ExitCodes.Failure, "d.json: no score", false), ErrorReport.Of(new CocoFormatException("d.json", "no score")));
        Assert.Equal(ExitCodes.Interrupted, ErrorReport.Of(new OperationCanceledException()).ExitCode);
        Assert.Equal(new ErrorReport(ExitCodes.Failure, "NullReferenceException: x", true), ErrorReport.Of(new NullReferenceException("x")));
        Assert.Equal(new ErrorReport(ExitCodes.Failure, "disk full writing /r/last: needed ~2 MB, 1 MB free", false),
            ErrorReport.Of(new DiskFullException("/r/last", "needed ~2 MB, 1 MB free")));
        // ENOSPC from any other write (log, evaluation, plot): the kernel's errno 28, not a bug.
        Assert.Equal(new ErrorReport(ExitCodes.Failure, "disk full: No space left on device : '/r/log.jsonl'", false),
            ErrorReport.Of(new IOException("No space left on device : '/r/log.jsonl'", 28)));
        Assert.True(ErrorReport.Of(new IOException("Permission denied", 13)).IsBug);
    }

    [Fact]
    public void ConcurrentInvocations_KeepTheirOwnOutput()
    {
        var keys = Task.Run(() => Enumerable.Range(0, 20).Select(_ => CliRunner.RunGfl("config", "keys")).ToList());
        var bad = Task.Run(() => Enumerable.Range(0, 20).Select(_ => CliRunner.RunGfl("config", "check", "-c", "/nonexistent/x.yaml")).ToList());
        Assert.All(keys.Result, r =>
        {
            Assert.Equal(0, r.ExitCode);
            Assert.Contains("| `model.assigner.topk` |", r.Out);
            Assert.DoesNotContain("nonexistent", r.All);
        });
        Assert.All(bad.Result, r =>
        {
            Assert.Equal(ExitCodes.Usage, r.ExitCode);
            Assert.Contains("/nonexistent/x.yaml", r.Err);
            Assert.DoesNotContain("model.assigner.topk", r.All);
        });
    }
}
