using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using GflTrainer.Reporting;
using GflTrainer.Tests.Training;
using GflTrainer.Training;
using SkiaSharp;
using Xunit;

namespace GflTrainer.Tests.Reporting;

/// <summary>One tiny training run (two epochs, evaluated after each) and what a user looks at afterwards: the evaluation
/// plots of every evaluation, run.json, and report.html, self-contained, rebuilt byte for byte from the same files, and
/// rendered by a real browser (Debian's headless Chromium; .ci/run installs it).</summary>
[Collection("training")]
public sealed class RunReportTests
{
    static readonly Lazy<string> Run = new(() => Train("run"));

    static string Train(string name)
    {
        var root = Directory.CreateTempSubdirectory("gfl-report").FullName;
        var cfg = TrainRunTests.TinyConfig(root, extra: "evaluation: { mosaic_images: 4, mosaic_score_thr: 0.01 }");
        var work = Path.Combine(root, name);
        TrainRun.Execute(new TrainRequest(cfg, ["train.log_interval=1"], work), Serilog.Core.Logger.None, null, CancellationToken.None);
        return work;
    }

    /// <summary>The same run twice (CPU training is deterministic): every plot, mosaic and statistics file has the same
    /// bytes, so two runs compare file by file.</summary>
    [Fact]
    public void TheSameRunTwice_WritesTheSamePlotAndStatisticsFiles()
    {
        var first = Run.Value;
        var second = Train("again");
        var files = new[] { "plots", "eval", RunReport.DataStatsDir }
            .SelectMany(d => Directory.EnumerateFiles(Path.Combine(first, d), "*", SearchOption.AllDirectories))
            .Where(f => f.EndsWith(".png", StringComparison.Ordinal) || f.EndsWith(".jpg", StringComparison.Ordinal)
                || Path.GetFileName(f) is "pr_curves.json" or "confusion_matrix.json" or "stats.json")
            .Select(f => Path.GetRelativePath(first, f)).Order(StringComparer.Ordinal).ToList();
        Assert.True(files.Count >= 3 + 2 * 7 + 10, string.Join(", ", files));
        foreach (var f in files)
            Assert.True(File.ReadAllBytes(Path.Combine(first, f)).SequenceEqual(File.ReadAllBytes(Path.Combine(second, f))), f + " differs");
    }

    const int ImagesInReport = 3 + 6 + 2 * 4;

    [Fact]
    public void EveryEvaluation_WritesItsPlots_AndRunJsonRecordsTheCommandSeedAndData()
    {
        var work = Run.Value;
        foreach (var epoch in new[] { 1, 2 })
            foreach (var f in new[] { "metrics.json", EvaluationPlots.PrCurvesJson, EvaluationPlots.PrCurves50Png, EvaluationPlots.PerClassApPng,
                EvaluationPlots.ConfusionJson, EvaluationPlots.ConfusionPng, EvaluationPlots.MosaicJpg })
                Assert.True(File.Exists(Path.Combine(work, "eval", $"epoch_{epoch}", f)), $"epoch {epoch}: {f} missing");

        foreach (var f in new[] { "stats.json", "train_box_size.png", "val_anchor_coverage.png" })
            Assert.True(File.Exists(Path.Combine(work, RunReport.DataStatsDir, f)), f + " missing");
        var summary = RunSummary.Read(work)!;
        Assert.Equal(7, summary.Seed);
        Assert.StartsWith("gfl train --config ", summary.Command);
        Assert.Contains("--set train.log_interval=1", summary.Command);
        Assert.Contains("--set train.seed=7", summary.Reproduce);
        Assert.Equal(["train", "val"], summary.Splits.Select(s => s.Name));
        var valGt = GflTrainer.Coco.CocoAnnotations.Load(summary.Splits[1].AnnFile);
        Assert.Equal(valGt.Images.Count, summary.Splits[1].Images);
        Assert.Equal(valGt.Annotations.Count, summary.Splits[1].Boxes + summary.Splits[1].CrowdRegions);
        Assert.Equal(summary.Splits[1].Boxes, summary.Splits[1].BoxesPerClass.Values.Sum());
    }

    [Fact]
    public void Report_HasEverySection_InlinesItsImages_FetchesNothing_AndIsRebuiltByteForByte()
    {
        var work = Run.Value;
        var path = Path.Combine(work, RunReport.FileName);
        var html = File.ReadAllText(path);
        foreach (var (id, _) in RunReport.Sections) Assert.Contains($"<section id=\"{id}\">", html);
        // Nothing from the network or the disk: no src/href other than data URIs and in-page anchors, no external script.
        foreach (Match m in Regex.Matches(html, "(?:src|href)=\"([^\"]*)\""))
            Assert.True(m.Groups[1].Value.StartsWith("data:", StringComparison.Ordinal) || m.Groups[1].Value.StartsWith('#'), m.Value);
        Assert.DoesNotContain("<link", html);
        Assert.DoesNotContain("<script src", html);
        // loss, lr, ap; of the last evaluation: 2 PR, AP bars, 2 confusion, mosaic; per split (train, val): box size,
        // anchor coverage, boxes per class, objects per image
        Assert.Equal(ImagesInReport, Regex.Matches(html, "<img ").Count);
        Assert.Contains("ground truths get no positive anchor", html);
        Assert.Contains("--set train.seed=7", html);
        Assert.DoesNotContain("not written yet", html);

        var again = File.ReadAllBytes(RunReport.Write(work));
        Assert.Equal(File.ReadAllBytes(path), again);
    }

    /// <summary>A run that has not evaluated yet (or has no val split) still gets every section, each saying what is
    /// missing, and no broken image.</summary>
    [Fact]
    public void Report_OfARunWithoutEvaluations_SaysWhatIsMissing()
    {
        var work = Directory.CreateTempSubdirectory("gfl-report-empty").FullName;
        File.WriteAllText(Path.Combine(work, "config.yaml"), "model: {}\n");
        var html = File.ReadAllText(RunReport.Write(work));
        foreach (var (id, _) in RunReport.Sections) Assert.Contains($"<section id=\"{id}\">", html);
        Assert.DoesNotContain("<img ", html);
        Assert.Contains("No evaluation yet.", html);
        Assert.Contains("run.json not found", html);
        Assert.Contains("No complete checkpoint.", html);
        Directory.Delete(work, recursive: true);
    }

    [Fact]
    public void Report_RendersInHeadlessChromium_EverySectionAndImage_WithoutErrors()
    {
        var chromium = new[] { "chromium", "chromium-browser", "google-chrome" }
            .SelectMany(n => (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Select(d => Path.Combine(d, n)))
            .FirstOrDefault(File.Exists)
            ?? throw new Xunit.Sdk.XunitException("chromium not found: install it (apt-get install chromium; .ci/run does)");
        var work = Run.Value;
        var url = new Uri(Path.Combine(work, RunReport.FileName)).AbsoluteUri;
        var shot = Path.Combine(work, "report_screenshot.png");
        // --dump-dom prints the DOM after the load event: the page's own check has set its attributes by then.
        var dom = Chromium(chromium, work, "--dump-dom", url);
        var root = Regex.Match(dom, "<html[^>]*>").Value;
        Assert.Contains("data-rendered=\"ok\"", root);
        Assert.Contains($"data-sections=\"{RunReport.Sections.Count}\"", root);
        Assert.Contains($"data-images=\"{ImagesInReport}\"", root);
        Assert.Contains("data-broken-images=\"0\"", root);

        Chromium(chromium, work, "--hide-scrollbars", "--window-size=1280,2400", $"--screenshot={shot}", url);
        using var bmp = SKBitmap.Decode(shot);
        Assert.Equal(1280, bmp.Width);
        // Something was drawn: the screenshot is not one flat colour (a blank or error page is nearly so).
        var colours = new HashSet<SKColor>();
        for (int y = 0; y < bmp.Height; y += 7) for (int x = 0; x < bmp.Width; x += 7) colours.Add(bmp.GetPixel(x, y));
        Assert.True(colours.Count > 50, $"screenshot has {colours.Count} colours");
    }

    static string Chromium(string exe, string profileParent, params string[] args)
    {
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true };
        // A root user in a container needs --no-sandbox; a private profile keeps runs apart.
        foreach (var a in new[] { "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            $"--user-data-dir={Path.Combine(profileParent, "chromium-profile")}" }.Concat(args))
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(120_000)) { p.Kill(entireProcessTree: true); throw new Xunit.Sdk.XunitException("chromium did not finish in 120 s"); }
        Assert.True(p.ExitCode == 0, $"chromium exit {p.ExitCode}: {stderr.Result}");
        return stdout.Result;
    }
}
