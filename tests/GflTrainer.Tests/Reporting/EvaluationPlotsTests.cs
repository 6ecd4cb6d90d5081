using System.Text.Json;
using GflTrainer.Coco;
using GflTrainer.Data;
using GflTrainer.Reporting;
using Xunit;

namespace GflTrainer.Tests.Reporting;

/// <summary>The evaluation plots of one evaluation, on a synthetic split with detections made from its ground truth
/// (some exact, some shifted, some with the wrong class, some missing, some spurious), so every curve and cell has
/// content.</summary>
public sealed class EvaluationPlotsTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("gfl-evalplots").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    (CocoAnnotations Ann, CocoGroundTruth Gt, List<CocoDetection> Dets) Case()
    {
        SyntheticShapes.Write(Path.Combine(_dir, "data"), new SyntheticShapesOptions { Seed = 5, TrainImages = 0, ValImages = 6, ImageSize = 96, MinSide = 20, MaxSide = 50 });
        var ann = CocoAnnotations.Load(Path.Combine(_dir, "data", "annotations", "instances_val.json"));
        var gt = CocoGroundTruth.FromAnnotations(ann);
        var dets = new List<CocoDetection>();
        int i = 0;
        var cats = gt.Categories.Select(c => c.Id).ToArray();
        foreach (var g in gt.Annotations)
        {
            switch (i++ % 4)
            {
                case 0: dets.Add(new(g.ImageId, g.CategoryId, g.X, g.Y, g.Width, g.Height, 0.9)); break;
                case 1: dets.Add(new(g.ImageId, g.CategoryId, g.X + g.Width * 0.2, g.Y, g.Width, g.Height, 0.6)); break;
                case 2: dets.Add(new(g.ImageId, cats[(Array.IndexOf(cats, g.CategoryId) + 1) % cats.Length], g.X, g.Y, g.Width, g.Height, 0.8)); break;
                case 3: break;   // missed
            }
        }
        dets.Add(new(gt.ImageIds[0], cats[0], 1, 1, 10, 10, 0.95));   // spurious
        return (ann, gt, dets);
    }

    IReadOnlyList<string> Write(string outDir, CocoAnnotations ann, CocoGroundTruth gt, List<CocoDetection> dets, out CocoMetrics metrics)
    {
        var evaluator = new CocoEvaluator(gt);
        var acc = evaluator.Accumulate(evaluator.EvaluateImages(CocoDetections.Create(gt, dets)));
        metrics = acc.Summarize();
        var files = ann.Images.ToDictionary(x => x.Id, x => Path.Combine(_dir, "data", "images", x.FileName));
        return EvaluationPlots.Write(outDir, gt, dets, acc, new EvaluationPlotOptions(MosaicImages: 4), id => files[id]);
    }

    [Fact]
    public void WritesEveryPlotAndTheNumbersBehindThem_ByteIdenticalForTheSameEvaluation()
    {
        var (ann, gt, dets) = Case();
        var first = Write(Path.Combine(_dir, "a"), ann, gt, dets, out var metrics);
        var second = Write(Path.Combine(_dir, "b"), ann, gt, dets, out _);
        Assert.Equal(
            new[] { EvaluationPlots.PrCurvesJson, EvaluationPlots.PrCurves50Png, EvaluationPlots.PrCurves5095Png, EvaluationPlots.PerClassApPng,
                EvaluationPlots.ConfusionJson, EvaluationPlots.ConfusionPng, EvaluationPlots.ConfusionNormalisedPng, EvaluationPlots.MosaicJpg },
            first.Select(Path.GetFileName));
        for (int i = 0; i < first.Count; i++)
        {
            Assert.True(new FileInfo(first[i]).Length > 500, first[i]);
            Assert.True(File.ReadAllBytes(first[i]).SequenceEqual(File.ReadAllBytes(second[i])), Path.GetFileName(first[i]) + " differs between two writes");
        }

        using var pr = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(_dir, "a", EvaluationPlots.PrCurvesJson)));
        Assert.Equal(101, pr.RootElement.GetProperty("recall").GetArrayLength());
        var cats = pr.RootElement.GetProperty("categories").EnumerateArray().ToList();
        Assert.Equal(gt.Categories.Count, cats.Count);
        for (int k = 0; k < cats.Count; k++)
            Assert.Equal(metrics.PerCategory[k].AP, cats[k].GetProperty("AP").GetDouble(), 1e-6);

        using var cm = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(_dir, "a", EvaluationPlots.ConfusionJson)));
        var counts = cm.RootElement.GetProperty("counts").EnumerateArray().Select(r => r.EnumerateArray().Select(v => v.GetInt64()).ToArray()).ToArray();
        int n = gt.Categories.Count;
        Assert.Equal(n + 1, counts.Length);
        // Each class row holds every ground truth of the class once; the background row the one spurious box.
        for (int k = 0; k < n; k++)
            Assert.Equal(gt.Annotations.Count(a => a.CategoryId == gt.Categories[k].Id && !a.IsCrowd), counts[k].Sum());
        Assert.Equal(1, counts[n].Sum());
        Assert.Equal(dets.Count, Enumerable.Range(0, n + 1).Sum(r => Enumerable.Range(0, n).Sum(c => counts[r][c])));
    }

    [Fact]
    public void WithoutAnImageSource_NoMosaic_AndWithoutDetections_StillEveryOtherPlot()
    {
        var (ann, gt, _) = Case();
        var evaluator = new CocoEvaluator(gt);
        var acc = evaluator.Accumulate(evaluator.EvaluateImages(CocoDetections.Create(gt, [])));
        var written = EvaluationPlots.Write(Path.Combine(_dir, "empty"), gt, [], acc, new EvaluationPlotOptions());
        Assert.Equal(7, written.Count);
        Assert.DoesNotContain(written, f => f.EndsWith(EvaluationPlots.MosaicJpg, StringComparison.Ordinal));
    }

    /// <summary>COCO's 80 classes: the curves' legend is left out (the JSON names them), the matrix grows with the class
    /// count, and everything is still written.</summary>
    [Fact]
    public void EightyClasses_AreWrittenToo()
    {
        var cats = Enumerable.Range(1, 80).Select(i => new CocoCategory(i, $"class{i}")).ToArray();
        var rng = new Random(1);
        var boxes = new List<CocoGroundTruthBox>();
        var dets = new List<CocoDetection>();
        for (int image = 1; image <= 40; image++)
            for (int j = 0; j < 6; j++)
            {
                long cat = rng.Next(1, 81);
                double x = rng.Next(0, 500), y = rng.Next(0, 500), w = rng.Next(10, 100), h = rng.Next(10, 100);
                boxes.Add(new CocoGroundTruthBox(boxes.Count + 1, image, cat, x, y, w, h, w * h, false));
                dets.Add(new CocoDetection(image, j % 3 == 0 ? rng.Next(1, 81) : cat, x + 2, y, w, h, rng.NextDouble()));
            }
        var gt = new CocoGroundTruth(Enumerable.Range(1, 40).Select(i => (long)i), cats, boxes);
        var evaluator = new CocoEvaluator(gt);
        var acc = evaluator.Accumulate(evaluator.EvaluateImages(CocoDetections.Create(gt, dets)));
        var written = EvaluationPlots.Write(Path.Combine(_dir, "coco"), gt, dets, acc, new EvaluationPlotOptions(ConfusionScoreThreshold: 0));
        Assert.Equal(7, written.Count);
        using var cm = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(_dir, "coco", EvaluationPlots.ConfusionJson)));
        Assert.Equal(81, cm.RootElement.GetProperty("counts").GetArrayLength());
        using var png = SkiaSharp.SKBitmap.Decode(Path.Combine(_dir, "coco", EvaluationPlots.ConfusionPng));
        Assert.Equal(2400, png.Width);
    }
}
