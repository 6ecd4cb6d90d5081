using GflTrainer.Tests.Data;
using System.Text;
using GflTrainer.Data;
using Xunit;
using GflTrainer.Coco;

namespace GflTrainer.Tests.Coco;

public class CocoAnnotationsTests
{
    // Category ids deliberately unsorted and with a gap: labels follow ascending id order.
    const string Sample = """
    {
      "info": {"description": "x", "nested": {"a": [1, 2, {"b": null}]}},
      "licenses": [],
      "categories": [{"id": 7, "name": "cat\u00e9"}, {"id": 2, "name": "dog"}, {"id": 90, "name": "bird"}],
      "images": [
        {"id": 1, "file_name": "a.jpg", "width": 100, "height": 80},
        {"id": 2, "file_name": "b.jpg", "width": 50, "height": 50},
        {"id": 3, "file_name": "c.jpg", "width": 60, "height": 40},
        {"id": 4, "file_name": "d.jpg", "width": 20, "height": 100},
        {"id": 5, "file_name": "e.jpg", "width": 64, "height": 64}
      ],
      "annotations": [
        {"id": 10, "image_id": 1, "category_id": 7, "bbox": [10, 20, 30, 40], "area": 1200, "iscrowd": 0,
         "segmentation": [[10, 20, 40, 20, 40, 60, 10, 60]]},
        {"id": 11, "image_id": 1, "category_id": 2, "bbox": [0.5, 1.5, 10, 10], "area": 100, "iscrowd": 1,
         "segmentation": {"counts": "abc\"def", "size": [80, 100]}},
        {"id": 12, "image_id": 1, "category_id": 90, "bbox": [5, 5, 0.5, 10], "area": 5, "iscrowd": 0},
        {"id": 13, "image_id": 1, "category_id": 90, "bbox": [200, 5, 10, 10], "area": 100, "iscrowd": 0},
        {"id": 14, "image_id": 3, "category_id": 2, "bbox": [1, 1, 5, 5], "area": 25, "iscrowd": 1},
        {"id": 15, "image_id": 4, "category_id": 90, "bbox": [1, 1, 5, 5], "area": 25, "iscrowd": 0},
        {"id": 16, "image_id": 5, "category_id": 2, "bbox": [1, 1, 0.9, 5], "area": 4.5, "iscrowd": 0}
      ]
    }
    """;

    static CocoAnnotations Load(TempDir dir, string json = Sample) => CocoAnnotations.Load(dir.File("ann.json", json));

    [Fact]
    public void Load_ReadsImagesAnnotationsCategories_SkippingSegmentationAndUnknownKeys()
    {
        using var dir = new TempDir();
        var coco = Load(dir);
        Assert.Equal(5, coco.Images.Count);
        Assert.Equal(7, coco.Annotations.Count);
        Assert.Equal(new[] { "caté", "dog", "bird" }, coco.Categories.Select(c => c.Name));
        Assert.Equal(new[] { 10.0, 20, 30, 40 }, coco.Annotations[0].Bbox);
        Assert.True(coco.Annotations[1].IsCrowd);
        Assert.Empty(coco.Issues);
    }


    /// <summary>The digest computed while parsing is the file's: every byte, also past the closing brace and beyond
    /// the parser's read-ahead buffer (a large whitespace tail).</summary>
    [Theory]
    [InlineData("")]
    [InlineData("\n")]
    [InlineData("large-tail")]
    public void Sha256_IsTheDigestOfTheWholeFile(string tail)
    {
        using var dir = new TempDir();
        var text = Sample + (tail == "large-tail" ? new string(' ', 300_000) + "\n" : tail);
        var file = dir.File("ann.json", text);
        var expected = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(file))).ToLowerInvariant();
        Assert.Equal(expected, CocoAnnotations.Load(file).Sha256);
    }
    [Fact]
    public void CategoryMap_AssignsContiguousLabelsInIdOrder_AndRoundTripsThroughJson()
    {
        var map = new CategoryMap([new(7, "cat"), new(2, "dog"), new(90, "bird")]);
        Assert.Equal(0, map.ToLabel(2));
        Assert.Equal(1, map.ToLabel(7));
        Assert.Equal(2, map.ToLabel(90));
        Assert.Equal(90, map.ToCategoryId(2));
        Assert.False(map.TryGetLabel(3, out _));
        var back = CategoryMap.FromJson(map.ToJson());
        Assert.Equal(map.Categories, back.Categories);
        Assert.Equal(2, back.ToLabel(90));
        Assert.Throws<GflRuntimeException>(() => new CategoryMap([new(1, "a"), new(1, "b")]));
    }

    [Fact]
    public void ForTraining_CrowdBecomesIgnored_TinyAndOutsideBoxesDropped_AndCounted()
    {
        using var dir = new TempDir();
        var ds = CocoDataset.ForTraining(Load(dir), dir.Path);
        var a = ds.Entries.Single(e => e.ImageId == 1);
        Assert.Equal(new[] { 10f, 20, 40, 60 }, a.Boxes);           // [x, y, w, h] -> xyxy, no -1
        Assert.Equal(new long[] { 1 }, a.Labels);                   // category 7 is label 1 (ids 2, 7, 90)
        Assert.Equal(new[] { 0.5f, 1.5f, 10.5f, 11.5f }, a.IgnoredBoxes);
        Assert.Equal(2, ds.Stats.DroppedTinyBoxes);                 // ann 12 (w 0.5) and ann 16 (w 0.9)
        Assert.Equal(1, ds.Stats.DroppedOutsideImage);              // ann 13 starts at x=200 in a 100 px image
        Assert.Equal(2, ds.Stats.CrowdRegions);
    }

    [Fact]
    public void ForTraining_FiltersImagesWithoutAnnotationsAndSmallImages_EvaluationKeepsAll()
    {
        using var dir = new TempDir();
        var coco = Load(dir);
        var train = CocoDataset.ForTraining(coco, dir.Path);
        // image 2: no annotation (filter_empty_gt); image 4: 20 px wide < min_size 32.
        // image 3 (crowd only) and image 5 (only a w<1 box) stay, as mmdetection checks raw annotations.
        Assert.Equal(new long[] { 1, 3, 5 }, train.Entries.Select(e => e.ImageId));
        Assert.Equal(1, train.Stats.SkippedWithoutAnnotations);
        Assert.Equal(1, train.Stats.SkippedSmallerThanMinSize);
        Assert.Empty(train.Entries.Single(e => e.ImageId == 5).Labels);
        var eval = CocoDataset.ForEvaluation(coco, dir.Path);
        Assert.Equal(new long[] { 1, 2, 3, 4, 5 }, eval.Entries.Select(e => e.ImageId));
    }

    [Fact]
    public void Load_MalformedJson_ThrowsNamingFileLineAndByte()
    {
        using var dir = new TempDir();
        var bad = "{\n  \"images\": [\n    {\"id\": 1,, \"file_name\": \"a.jpg\"}\n  ]\n}";
        var path = dir.File("bad.json", bad);
        var e = Assert.Throws<CocoFormatException>(() => CocoAnnotations.Load(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("line 3", e.Message);
        Assert.Contains("column 14", e.Message);   // the second comma, 1-based
    }

    [Fact]
    public void Load_WrongStructure_NamesLineAndColumnOfTheToken()
    {
        using var dir = new TempDir();
        var path = dir.File("s.json", "{\n \"categories\": [],\n   \"images\": 5}");
        var e = Assert.Throws<CocoFormatException>(() => CocoAnnotations.Load(path));
        Assert.Equal($"{path}: line 3, column 14 (byte offset 34): 'images' must be an array", e.Message);
        var notCoco = dir.File("n.json", "{\"images\": []}");
        Assert.Contains("not a COCO instances file (no top-level annotations, categories)",
            Assert.Throws<CocoFormatException>(() => CocoAnnotations.Load(notCoco)).Message);
    }

    [Fact]
    public void Load_LargeFileAcrossManyBufferRefills_ReadsEveryAnnotation()
    {
        using var dir = new TempDir();
        var sb = new StringBuilder("{\"images\": [{\"id\": 1, \"file_name\": \"a.jpg\", \"width\": 1000, \"height\": 1000}],\n\"annotations\": [\n");
        const int n = 30_000;   // ~3.5 MB: the 1 MB buffer refills mid-token many times
        for (int i = 0; i < n; i++)
        {
            if (i > 0) sb.Append(",\n");
            sb.Append($"{{\"segmentation\": [[{string.Join(", ", Enumerable.Range(0, 12).Select(k => (k * 1.25 + i).ToString("0.00", System.Globalization.CultureInfo.InvariantCulture)))}]], ");
            sb.Append($"\"id\": {i + 1}, \"image_id\": 1, \"category_id\": 1, \"bbox\": [{i % 900}.5, 2, 3e1, 4.0E+1], \"area\": 1200, \"iscrowd\": 0}}");
        }
        sb.Append("],\n\"categories\": [{\"id\": 1, \"name\": \"x\"}]}");
        var coco = CocoAnnotations.Load(dir.File("big.json", sb.ToString()));
        Assert.Equal(n, coco.Annotations.Count);
        Assert.Equal(n, coco.Annotations[^1].Id);
        Assert.Equal(new[] { (n - 1) % 900 + 0.5, 2, 30, 40 }, coco.Annotations[^1].Bbox);
        Assert.Equal(Enumerable.Range(1, n).Select(i => (long)i), coco.Annotations.Select(a => a.Id));
    }

    [Fact]
    public void Load_WrongTypedFields_AreCollectedAsIssues_AndTrainingRefusesThem()
    {
        using var dir = new TempDir();
        var coco = Load(dir, """
        {"images": [{"id": "one", "file_name": "a.jpg", "width": 10, "height": 10}],
         "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, "3", 4]}],
         "categories": [{"id": 1, "name": "x"}]}
        """);
        Assert.Equal(2, coco.Issues.Count);
        Assert.Contains("'id' must be an integer", coco.Issues[0].Message);
        Assert.Contains("bbox", coco.Issues[1].Message);
        var e = Assert.Throws<DataFileException>(() => CocoDataset.ForTraining(coco, dir.Path));
        Assert.Equal(coco.SourceFile, e.File);
        Assert.Contains("gfl data check", e.Message);
    }

    [Theory]
    [InlineData("../outside.jpg")]
    [InlineData("sub/../../outside.jpg")]
    [InlineData("/etc/passwd")]
    public void ResolveImagePath_RefusesNamesLeavingTheRoot(string fileName)
    {
        Assert.Null(CocoDataset.ResolveImagePath("/data/images", fileName));
    }

    [Fact]
    public void ResolveImagePath_AcceptsNestedRelativeNames()
    {
        Assert.Equal("/data/images/train/a.jpg", CocoDataset.ResolveImagePath("/data/images", "train/./a.jpg"));
    }
}
