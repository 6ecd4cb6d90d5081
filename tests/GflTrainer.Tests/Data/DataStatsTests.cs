using GflTrainer.Data.Statistics;
using System.Text.Json;
using GflTrainer.Config;
using GflTrainer.Data;
using GflTrainer.Data.Transforms;
using GflTrainer.Reporting;
using Xunit;

namespace GflTrainer.Tests.Data;

/// <summary><c>gfl data stats</c>'s numbers on a hand-made COCO file whose every count is known.</summary>
public sealed class DataStatsTests : IDisposable
{
    readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    // Categories 1 and 3 (labels 0, 1). Image 3 has no annotation (dropped by filter_empty_gt), image 4 is below
    // min_size 32, image 5 has only a crowd region (kept, no boxes). Annotation 3 is 0.5 px wide (dropped as tiny).
    const string Coco = """
        {"images": [
          {"id": 1, "file_name": "a.jpg", "width": 1000, "height": 500},
          {"id": 2, "file_name": "b.jpg", "width": 640, "height": 480},
          {"id": 3, "file_name": "c.jpg", "width": 640, "height": 480},
          {"id": 4, "file_name": "d.jpg", "width": 20, "height": 20},
          {"id": 5, "file_name": "e.jpg", "width": 640, "height": 480}],
         "categories": [{"id": 1, "name": "cat"}, {"id": 3, "name": "dog"}],
         "annotations": [
          {"id": 1, "image_id": 1, "category_id": 1, "bbox": [100, 100, 30, 60], "area": 1800, "iscrowd": 0},
          {"id": 2, "image_id": 1, "category_id": 3, "bbox": [0, 0, 300, 200], "area": 60000, "iscrowd": 0},
          {"id": 3, "image_id": 1, "category_id": 1, "bbox": [500, 200, 0.5, 10], "area": 5, "iscrowd": 0},
          {"id": 4, "image_id": 2, "category_id": 1, "bbox": [10, 10, 50, 50], "area": 2500, "iscrowd": 0},
          {"id": 5, "image_id": 2, "category_id": 1, "bbox": [200, 200, 100, 100], "area": 10000, "iscrowd": 1},
          {"id": 6, "image_id": 4, "category_id": 3, "bbox": [1, 1, 5, 5], "area": 25, "iscrowd": 0},
          {"id": 7, "image_id": 5, "category_id": 3, "bbox": [0, 0, 100, 100], "area": 10000, "iscrowd": 1},
          {"id": 8, "image_id": 2, "category_id": 3, "bbox": [300, 300, 10, 10], "area": 100, "iscrowd": 0}]}
        """;

    (GflConfig Config, SplitConfig Split) Setup(params string[] overrides)
    {
        var ann = _dir.File("instances.json", Coco);
        var cfg = ConfigLoader.LoadYaml("", "defaults.yaml", overrides);
        return (cfg, new SplitConfig { AnnFile = ann, ImgPrefix = _dir.Path });
    }

    DatasetStatistics Compute(string split = "train", params string[] overrides)
    {
        var (cfg, s) = Setup(overrides);
        return DatasetStatistics.Compute(cfg, [(split, s)]);
    }

    [Fact]
    public void DataStats_Counts_FollowTheTrainingRules()
    {
        var s = Compute().Splits.Single();
        Assert.Equal("training", s.View);
        Assert.Equal(5, s.Rules.ImagesInFile);
        Assert.Equal(1, s.Rules.SkippedWithoutAnnotations);
        Assert.Equal(1, s.Rules.SkippedSmallerThanMinSize);
        Assert.Equal(1, s.Rules.DroppedTinyBoxes);
        Assert.Equal(3, s.Images);
        Assert.Equal(1, s.ImagesWithoutBoxes);       // image 5: only a crowd region
        Assert.Equal(4, s.Boxes);
        Assert.Equal(2, s.CrowdBoxes);
        Assert.Equal([("cat", 2L, 2L), ("dog", 2L, 2L)], s.Classes.Select(c => (c.Name, c.Boxes, c.Images)));
        Assert.Equal(new ValueSummary(4.0 / 3, 2, 2), s.ObjectsPerImage);
        Assert.Equal([-0.5, 0.5, 1.5, 2.5], s.ObjectsPerImageHistogram.Edges);
        Assert.Equal([1L, 0L, 2L], s.ObjectsPerImageHistogram.Counts);
        // Resized sqrt(w*h): box 8 ~16.7 small, boxes 1 (~56.6) and 4 (~83.3) medium, box 2 (~326.6) large.
        Assert.Equal([1L, 2L, 1L], s.SizeCounts);
        Assert.Equal(4, s.SizeHistogram.Total);
        Assert.Contains(32.0, s.SizeHistogram.Edges);
        Assert.Contains(96.0, s.SizeHistogram.Edges);
        Assert.Equal(4, s.AspectLog2Histogram.Total);
        Assert.Equal(4, s.Coverage.Gts);
    }

    [Fact]
    public void DataStats_EvaluationView_KeepsEveryImage()
    {
        var s = Compute("val").Splits.Single();
        Assert.Equal("evaluation", s.View);
        Assert.Equal(5, s.Images);
        Assert.Equal(2, s.ImagesWithoutBoxes);    // image 3 (nothing) and 5 (crowd only); image 4 keeps its box
        Assert.Equal(5, s.Boxes);
    }

    [Fact]
    public void DataStats_ResizedBox_IsWhatTheTrainingTransformGives()
    {
        // 1000x500 at img_scale (1333, 800), keep ratio: f = min(1333/1000, 800/500) = 1.333 -> 1333 x 667.
        var (cfg, split) = Setup();
        var coco = GflTrainer.Coco.CocoAnnotations.Load(split.AnnFile);
        var entry = DataPipelineFactory.TrainingView(coco, split.ImgPrefix, cfg.Data).Entries.Single(e => e.ImageId == 1);
        var scale = DataPipelineFactory.TestScale(cfg.Data);
        var resized = ResizedImage.From(entry, scale);
        Assert.Equal((1333, 667), (resized.Width, resized.Height));
        float sw = 1333f / 1000, sh = 667f / 500;
        Assert.Equal(new[] { 100 * sw, 100 * sh, 130 * sw, 160 * sh }, resized.Boxes[..4]);

        // The training transform on a real image of that size moves the boxes to the same floats.
        var image = new RgbImage(new byte[1000 * 500 * 3], 500, 1000);
        var sample = DetectionTransform.Eval(scale).Apply(image, entry, new Random(0));
        Assert.Equal((sample.Width, sample.Height), (resized.Width, resized.Height));
        Assert.Equal(sample.Boxes, resized.Boxes);
        PixelBufferPool.Return(sample.Pixels);
    }

    [Fact]
    public void DataStats_BinCounts_PutOutliersInTheOuterBins()
    {
        var b = BinCounts.Of([-5, 0, 0.99, 1, 2.5, 3, 100], [0, 1, 2, 3]);
        Assert.Equal([3L, 1L, 3L], b.Counts);
        Assert.Equal(7, b.Total);
        Assert.Equal([0.0, 8, 16, 24], BinCounts.LinearEdges(20, [4, 8], 3));
    }

    [Fact]
    public void DataStats_Json_IsDeterministic_AndHoldsTheNumbers()
    {
        var first = DatasetStatisticsReport.ToJson(Compute());
        var second = DatasetStatisticsReport.ToJson(Compute());
        Assert.Equal(first, second);
        using var doc = JsonDocument.Parse(first);
        var split = doc.RootElement.GetProperty("splits")[0];
        Assert.Equal(3, split.GetProperty("images").GetInt32());
        Assert.Equal(2, split.GetProperty("crowd_boxes").GetInt32());
        Assert.Equal(1, split.GetProperty("rules").GetProperty("dropped_tiny_boxes").GetInt32());
        Assert.Equal(4, split.GetProperty("size_histogram").GetProperty("counts").EnumerateArray().Sum(c => c.GetInt64()));
        Assert.Equal(4, split.GetProperty("coverage").GetProperty("gts").GetInt32());

        var a = Path.Combine(_dir.Path, "out1");
        var b = Path.Combine(_dir.Path, "out2");
        var written = DatasetStatisticsReport.Save(Compute(), a);
        DatasetStatisticsReport.Save(Compute(), b);
        Assert.Equal(File.ReadAllBytes(Path.Combine(a, "stats.json")), File.ReadAllBytes(Path.Combine(b, "stats.json")));
        foreach (var name in new[] { "box_size", "aspect", "objects_per_image", "boxes_per_class", "anchor_coverage" })
            Assert.Contains(Path.Combine(a, $"train_{name}.png"), written);
    }

    [Fact]
    public void DataStats_Table_NamesTheKeyNumbers()
    {
        var w = new StringWriter();
        DatasetStatisticsReport.Write(Compute(), w);
        var text = w.ToString();
        Assert.Contains("img_scale [1333, 800] keep_ratio, pad_divisor 32", text);
        Assert.Contains("in file 5; dropped by training: 1 without annotations (filter_empty_gt), 1 below min_size", text);
        Assert.Matches(@"boxes\s+4\s+crowd \(ignored\) 2; dropped: 1 under 1 px", text);
        Assert.Matches(@"small \(<32\)\s+1\s+25\.0", text);
        Assert.Contains("anchor coverage, ATSS (topk 9)", text);
    }
}
