using GflTrainer.Cli;
using GflTrainer.Cli.Commands;
using GflTrainer.Config;
using GflTrainer.Tests;
using GflTrainer.Tests.Config;
using Serilog.Events;
using Xunit;

namespace GflTrainer.Cli.Tests;

public sealed class ConfigCommandTests
{
    static string R50 => Path.Combine(TestPaths.RepoRoot(), "configs", "r50_1x.yaml");

    [Fact]
    public void Show_PrintsTheResolvedYaml_WithOverrides_Exit0()
    {
        var r = CliRunner.RunGfl("config", "show", "--config", R50, "--set", "train.epochs=24", "data.img_scale=640,480");

        Assert.Equal(0, r.ExitCode);
        Assert.Contains("  epochs: 24\n", r.Out);
        Assert.Contains("  img_scale: [640, 480]\n", r.Out);
        Assert.Contains("    lr: 0.01\n", r.Out);
        Assert.DoesNotContain("_base_:", r.Out);
        using var dir = new TempConfigDir();
        var again = ConfigLoader.Load(dir.Write("shown.yaml", r.Out));
        Assert.Equal(r.Out, ConfigWriter.ToYaml(again));
    }

    [Fact]
    public void Show_InvalidConfig_Exit2_OneLinePerProblem()
    {
        using var dir = new TempConfigDir();
        var file = dir.Write("bad.yaml", "model:\n  head:\n    num_clases: 3\ntrain:\n  epochs: -1\n");

        var r = CliRunner.RunGfl("config", "show", "-c", file);

        Assert.Equal(2, r.ExitCode);
        Assert.Equal("", r.Out);
        Assert.Contains("bad.yaml:3: model.head.num_clases: unknown key 'num_clases' (did you mean 'model.head.num_classes'?)", r.Err);
        Assert.Contains("bad.yaml:5: train.epochs: -1 is out of range; allowed [1, 100000]", r.Err);
        Assert.DoesNotContain("   at ", r.Err); // no stack trace
    }

    [Fact]
    public void Show_WithoutConfig_Exit2()
    {
        var r = CliRunner.RunGfl("config", "show");

        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--config", r.Err);
    }

    [Fact]
    public void Check_ValidConfig_Exit0_MissingFile_Exit2()
    {
        Assert.Equal(0, CliRunner.RunGfl("config", "check", "-c", R50).ExitCode);
        var r = CliRunner.RunGfl("config", "check", "-c", "/nonexistent/x.yaml");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("config file not found", r.Err);
    }

    /// <summary>What <c>gfl train</c> would reject at start is rejected by <c>gfl config check</c>: values only the
    /// reference implements (with file and line), and num_classes against the train file's categories.</summary>
    [Fact]
    public void Check_RejectsWhatTrainingWouldReject()
    {
        using var dir = new TempConfigDir();
        var ann = dir.Write("train.json", """
            {"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
             "annotations": [{"id": 1, "image_id": 1, "category_id": 7, "bbox": [1, 2, 10, 12], "area": 120, "iscrowd": 0}],
             "categories": [{"id": 7, "name": "platelet"}, {"id": 9, "name": "rbc"}]}
            """);
        string Config(string name, string extra) => dir.Write(name, $$"""
            model:
              head: { num_classes: 3 }
            data:
              train: { ann_file: {{ann}}, img_prefix: {{dir.Root}}/ }
            {{extra}}
            """);

        var wrongClasses = CliRunner.RunGfl("config", "check", "-c", Config("three.yaml", ""));
        Assert.Equal(2, wrongClasses.ExitCode);
        Assert.Contains("model.head.num_classes is 3 but", wrongClasses.Err);
        Assert.Contains("2 categories (platelet, rbc)", wrongClasses.Err);

        var right = CliRunner.RunGfl("config", "check", "-c", Config("two.yaml", ""), "--set", "model.head.num_classes=2");
        Assert.Equal(0, right.ExitCode);
        Assert.Contains("2 categories = model.head.num_classes", right.Out);

        var file = Config("bgr.yaml", "  to_rgb: false");
        var bgr = CliRunner.RunGfl("config", "check", "-c", file, "--set", "model.head.num_classes=2");
        Assert.Equal(2, bgr.ExitCode);
        Assert.Contains("bgr.yaml:5: data.to_rgb:", bgr.Err);
    }

    [Fact]
    public void Keys_PrintsTheReferenceTable()
    {
        var r = CliRunner.RunGfl("config", "keys");

        Assert.Equal(0, r.ExitCode);
        Assert.Equal(ConfigReference.MarkdownTable(), r.Out);
    }

    [Fact]
    public void DeviceAndLogLevel_CommandLineWins_ElseTheConfig()
    {
        var config = new GflConfig { Runtime = new RuntimeConfig { Device = "cpu", LogLevel = ConfigLogLevel.Warning } };
        var given = GflApp.Build().Parse(["config", "check", "-c", R50, "--device", "cuda:1", "--log-level", "debug"]);
        var omitted = GflApp.Build().Parse(["config", "check", "-c", R50]);

        Assert.Equal("cuda:1", ConfigCommand.Device(given, config));
        Assert.Equal(LogEventLevel.Debug, ConfigCommand.LogLevel(given, config));
        Assert.Equal("cpu", ConfigCommand.Device(omitted, config));
        Assert.Equal(LogEventLevel.Warning, ConfigCommand.LogLevel(omitted, config));
    }
}
