using System.Text.Json;
using GflTrainer.Coco.Tests;
using GflTrainer.Tests;
using Xunit;

namespace GflTrainer.Cli.Tests;

/// <summary><c>gfl eval</c> run in-process through <see cref="GflApp.Run"/>: exit code, printed text, metrics.json.</summary>
public sealed class EvalCommandTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("gfl-eval-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void FileMode_PrintsPycocotoolsSummaryAndTable_AndWritesMetricsJson()
    {
        string dir = TestPaths.Fixtures("cocoeval", "edge_crowd_only_category");
        string outPath = Path.Combine(_dir, "sub", "metrics.json");
        var (exit, stdout, _) = CliRunner.RunGfl("eval", "--annotations", Path.Combine(dir, "gt.json"),
            "--detections", Path.Combine(dir, "dets.json"), "--out", outPath);

        Assert.Equal(0, exit);
        using var expected = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "expected.json")));
        var lines = expected.RootElement.GetProperty("summary_lines").EnumerateArray().Select(e => e.GetString()!).ToArray();
        Assert.Contains(string.Join(Environment.NewLine, lines), stdout);
        Assert.Contains("| category | AP    | category | AP  | category | AP    |", stdout);
        Assert.Contains("| person   | 0.581 | car      | nan | train    | 1.000 |", stdout);

        using var metrics = JsonDocument.Parse(File.ReadAllText(outPath));
        var want = expected.RootElement.GetProperty("stats").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        var got = metrics.RootElement.GetProperty("stats").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        Assert.Equal(want.Length, got.Length);
        for (int i = 0; i < want.Length; i++) Assert.Equal(want[i], got[i], 1e-6);
        Assert.Equal(want[0], metrics.RootElement.GetProperty("bbox").GetProperty("AP").GetDouble(), 1e-6);
        Assert.Equal(-1, metrics.RootElement.GetProperty("per_category").GetProperty("car").GetDouble());
    }

    [Theory]
    [MemberData(nameof(CocoBadInputCases.Cases), MemberType = typeof(CocoBadInputCases))]
    public void BadInput_ExitCodeAndMessage(string caseName)
    {
        string dets = CocoBadInputCases.CaseFile(caseName, "dets.json");
        var (exit, stdout, stderr) = CliRunner.RunGfl("eval", "--annotations", CocoBadInputCases.CaseFile(caseName, "gt.json"), "--detections", dets);
        if (CocoBadInputCases.ExpectedErrors.TryGetValue(caseName, out var message))
        {
            Assert.Equal(1, exit);
            var errorLines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            var line = Assert.Single(errorLines);
            Assert.Contains(dets, line);
            Assert.Contains(message, line);
            Assert.DoesNotContain("Average Precision", stdout);
        }
        else
        {
            Assert.Equal(0, exit);
            Assert.Contains("Average Precision", stdout);
            if (caseName is "empty_detections" or "unknown_category_id") Assert.Contains("[WRN]", stderr);
        }
    }

    [Fact]
    public void MalformedJson_ExitsOneWithFileAndLine()
    {
        string gt = TestPaths.Fixtures("cocoeval", "edge_perfect", "gt.json");
        string dets = Path.Combine(_dir, "dets.json");
        File.WriteAllText(dets, "[\n{\"image_id\": 1,,}\n]");
        var (exit, _, stderr) = CliRunner.RunGfl("eval", "--annotations", gt, "--detections", dets);
        Assert.Equal(1, exit);
        Assert.Contains($"{dets}: invalid JSON at line 2", stderr);
    }

    [Fact]
    public void MissingDetectionsOption_IsAUsageError()
    {
        var (exit, _, stderr) = CliRunner.RunGfl("eval", "--annotations", TestPaths.Fixtures("cocoeval", "edge_perfect", "gt.json"));
        Assert.Equal(2, exit);
        Assert.Contains("--detections", stderr);
    }

    [Fact]
    public void UnknownOption_IsAUsageError()
    {
        var (exit, _, _) = CliRunner.RunGfl("eval", "--annotationz", "x.json");
        Assert.Equal(2, exit);
    }
}
