using GflTrainer.Tests;
using GflTrainer.Tests.Data;
using GflTrainer.Data;
using Xunit;
using GflTrainer.Coco;

namespace GflTrainer.Cli.Tests;

public sealed class DataCommandTests : IDisposable
{
    readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    static (int Code, string Output) Run(params string[] args)
    {
        var r = CliRunner.RunGfl(args);
        return (r.ExitCode, r.All);
    }

    string Synth(int train = 4, int val = 0, int seed = 0)
    {
        var (code, output) = Run("data", "synth", "--out", _dir.Path, "--train", $"{train}", "--val", $"{val}", "--size", "96", "--seed", $"{seed}");
        Assert.True(code == 0, output);
        return Path.Combine(_dir.Path, "images");
    }

    [Fact]
    public void Synth_SameSeedWritesSameBytes_OtherSeedDiffers()
    {
        Synth(train: 3, val: 1, seed: 7);
        var first = Directory.EnumerateFiles(_dir.Path, "*", SearchOption.AllDirectories).Order().ToDictionary(f => Path.GetRelativePath(_dir.Path, f), File.ReadAllBytes);
        Synth(train: 3, val: 1, seed: 7);
        var second = Directory.EnumerateFiles(_dir.Path, "*", SearchOption.AllDirectories).Order().ToDictionary(f => Path.GetRelativePath(_dir.Path, f), File.ReadAllBytes);
        Assert.Equal(6, first.Count);   // 4 images + 2 annotation files
        Assert.Equal(first.Keys, second.Keys);
        Assert.All(first, kv => Assert.Equal(kv.Value, second[kv.Key]));
        Synth(train: 3, val: 1, seed: 8);
        Assert.NotEqual(first["annotations/instances_train.json"], File.ReadAllBytes(Path.Combine(_dir.Path, "annotations", "instances_train.json")));
    }

    [Fact]
    public void Synth_OutputIsAValidLearnableDataSet()
    {
        var images = Synth(train: 6);
        var ann = Path.Combine(_dir.Path, "annotations", "instances_train.json");
        var (code, output) = Run("data", "check", "--ann", ann, "--images", images);
        Assert.Equal(0, code);
        Assert.Contains("no problems found", output);
        var coco = CocoAnnotations.Load(ann);
        Assert.Equal(new[] { "rectangle", "ellipse", "triangle" }, coco.Categories.Select(c => c.Name));
        Assert.All(coco.Annotations, a => Assert.InRange(a.Bbox![2], 30, 96));
    }

    [Fact]
    public void Check_BccdFixture_IsClean()
    {
        var (code, output) = Run("data", "check", "--ann", TestPaths.Fixtures("data", "bccd_mini", "instances_mini.json"),
            "--images", TestPaths.Fixtures("data", "bccd_mini", "images"));
        Assert.Equal(0, code);
        Assert.Contains("3 images, 30 annotations (0 crowd), 3 categories", output);
    }

    [Fact]
    public void Check_MalformedJson_ExitsOneNamingLineAndColumn()
    {
        var ann = _dir.File("bad.json", "{\"images\": [\n  {\"id\": 1 \"file_name\": \"a.jpg\"}\n]}");
        var (code, output) = Run("data", "check", "--ann", ann, "--images", _dir.Path);
        Assert.Equal(1, code);
        Assert.Contains("MalformedJson", output);
        Assert.Contains("bad.json: malformed JSON at line 2, column 12", output);
    }

    [Fact]
    public void Check_MissingAnnotationFile_IsAUsageError()
    {
        var (code, output) = Run("data", "check", "--ann", Path.Combine(_dir.Path, "nope.json"), "--images", _dir.Path);
        Assert.Equal(2, code);
        Assert.Contains("nope.json: file not found", output);
    }

    [Fact]
    public void Check_ReportsEveryKindOfProblem()
    {
        var images = Synth(train: 4);
        var train = Path.Combine(images, "train");
        var bytes = File.ReadAllBytes(Path.Combine(train, "000002.jpg"));
        File.WriteAllBytes(Path.Combine(train, "000002.jpg"), bytes[..(bytes.Length / 2)]);   // truncated
        File.WriteAllBytes(Path.Combine(train, "000003.jpg"), "not an image"u8.ToArray());
        var ann = _dir.File("problems.json", """
        {"categories": [{"id": 1, "name": "a"}, {"id": 1, "name": "again"}],
         "images": [
           {"id": 1, "file_name": "train/000001.jpg", "width": 100, "height": 96},
           {"id": 2, "file_name": "train/000002.jpg", "width": 96, "height": 96},
           {"id": 3, "file_name": "train/000003.jpg", "width": 96, "height": 96},
           {"id": 4, "file_name": "train/missing.jpg", "width": 96, "height": 96},
           {"id": 5, "file_name": "../../etc/passwd", "width": 96, "height": 96},
           {"id": 5, "file_name": "train/000004.jpg", "width": 96, "height": 96}
         ],
         "annotations": [
           {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 10, 10], "area": 100, "iscrowd": 0},
           {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 10, 10], "area": 100, "iscrowd": 0},
           {"id": 2, "image_id": 77, "category_id": 1, "bbox": [1, 1, 10, 10], "area": 100, "iscrowd": 0},
           {"id": 3, "image_id": 1, "category_id": 9, "bbox": [1, 1, 10, 10], "area": 100, "iscrowd": 0},
           {"id": 4, "image_id": 1, "category_id": 1, "bbox": [1, 1e999, 10, 10], "area": 100, "iscrowd": 0},
           {"id": 5, "image_id": 1, "category_id": 1, "bbox": [1, 1, -10, 10], "area": 100, "iscrowd": 0},
           {"id": 6, "image_id": 1, "category_id": 1, "bbox": [1, 1, 0.5, 10], "area": 5, "iscrowd": 0},
           {"id": 7, "image_id": 1, "category_id": 1, "bbox": [90, 1, 50, 10], "area": 500, "iscrowd": 0},
           {"id": 8, "image_id": 1, "category_id": 1, "bbox": [1, 1, 10], "area": 100, "iscrowd": 0}
         ]}
        """);
        var (code, output) = Run("data", "check", "--ann", ann, "--images", images);
        Assert.Equal(1, code);
        var report = DataChecker.Run(ann, images);
        var expected = Enum.GetValues<DataProblemKind>().Where(k => k != DataProblemKind.MalformedJson);
        Assert.Equal(expected, report.Problems.Select(p => p.Kind).Distinct());
        foreach (var kind in expected) Assert.Contains(kind.ToString(), output);
        Assert.Contains("train/000002.jpg: truncated", output);
        Assert.Contains("000003.jpg: not a supported image", output);
        Assert.Contains("'../../etc/passwd' is absolute or leaves the image root (refused)", output);
        Assert.Contains("decodes to 96x96 (EXIF orientation applied) but the JSON says 100x96", output);
        Assert.Contains("image_id 77 is not in images", output);
        Assert.Contains("category_id 9 is not in categories", output);
        Assert.Contains("reaches outside the 100x96 image", output);
    }

    [Fact]
    [Trait("Category", "Slow")]
    public void Check_SharedBccd_IsCleanOnEverySplit()
    {
        // shared/ lies beside the repository (as configs/bccd*.yaml expect it) in sessions and in CI; a clone placed
        // elsewhere has no data set to check (xunit 2 cannot mark the test skipped at run time).
        var root = Path.GetFullPath(Path.Combine(TestPaths.RepoRoot(), "..", "shared", "data", "bccd"));
        if (!Directory.Exists(root)) return;
        foreach (var split in new[] { "train", "val", "test" })
        {
            var (code, output) = Run("data", "check", "--ann", $"{root}/annotations/instances_{split}.json", "--images", $"{root}/images");
            Assert.True(code == 0, output);
        }
    }

    [Fact]
    public void Convert_Yolo_PrintsEachSplitAndTheImageRoot_AndCheckIsClean()
    {
        var yolo = ConversionTestSets.WriteYolo(_dir.Path, ConversionTestSets.Coco(_dir.Path));
        var outDir = Path.Combine(_dir.Path, "out");
        var (code, output) = Run("data", "convert", "--from", "yolo", yolo, "--out", outDir, "--check");
        Assert.True(code == 0, output);
        Assert.Matches(@"train: 4 images, \d+ boxes \(0 iscrowd\), 0 skipped, 0 repaired -> .*instances_train\.json", output);
        Assert.Contains("val: 2 images", output);
        Assert.Contains($"image root (data.*.img_prefix): {Path.Combine(yolo, "images")}", output);
        Assert.Contains($"report: {Path.Combine(outDir, "conversion_report.txt")}", output);
        Assert.Equal(2, System.Text.RegularExpressions.Regex.Matches(output, "no problems found").Count);
        Assert.True(File.Exists(Path.Combine(outDir, "annotations", "instances_val.json")));
    }

    [Fact]
    public void Convert_CheckFindsProblems_ExitsOne()
    {
        // A 1 px wide box survives conversion (it is inside the image) but gfl data check reports it as tiny.
        var src = Path.Combine(_dir.Path, "yolo");
        ConversionTestSets.Jpeg(Path.Combine(src, "images", "a.jpg"), 200, 100);
        _dir.File("yolo/labels/a.txt", "0 0.5 0.5 0.002 0.2\n");
        _dir.File("yolo/classes.txt", "dog\n");
        var (code, output) = Run("data", "convert", "--from", "yolo", src, "--out", Path.Combine(_dir.Path, "out"), "--check");
        Assert.Equal(1, code);
        Assert.Contains("TinyBox", output);
    }

    [Fact]
    public void Convert_SourceIsNotTheNamedLayout_IsAUsageErrorSayingWhatWasExpected()
    {
        var (code, output) = Run("data", "convert", "--from", "voc", _dir.Path, "--out", Path.Combine(_dir.Path, "out"));
        Assert.Equal(2, code);
        Assert.Contains("is not a Pascal VOC folder: expected Annotations/*.xml and JPEGImages/", output);
        (code, output) = Run("data", "convert", "--from", "coco", _dir.Path, "--out", Path.Combine(_dir.Path, "out"));
        Assert.NotEqual(0, code);
        Assert.Contains("coco", output);
    }

    [Fact]
    public void DataStats_SyntheticSet_PrintsTheTable_AndWritesJsonAndPngs()
    {
        var images = Synth(train: 4);
        var ann = Path.Combine(_dir.Path, "annotations", "instances_train.json");
        var outDir = Path.Combine(_dir.Path, "stats");
        var (code, output) = Run("data", "stats", "--ann", ann, "--images", images, "--out", outDir);
        Assert.True(code == 0, output);
        Assert.Contains("img_scale [1333, 800] keep_ratio, pad_divisor 32", output);
        Assert.Contains("== train: ", output);
        Assert.Matches(@"images\s+4\s+in file 4", output);
        Assert.Matches(@"rectangle\s+\d+", output);
        Assert.Contains("anchor coverage, ATSS (topk 9):", output);
        Assert.Contains($"wrote {Path.Combine(outDir, "stats.json")}", output);
        Assert.True(File.Exists(Path.Combine(outDir, "stats.json")));
        foreach (var name in new[] { "box_size", "aspect", "objects_per_image", "boxes_per_class", "anchor_coverage" })
            Assert.True(File.Exists(Path.Combine(outDir, $"train_{name}.png")), name);
    }

    [Fact]
    public void DataStats_MissingAnnotationFile_IsAUsageError()
    {
        var (code, output) = Run("data", "stats", "--ann", Path.Combine(_dir.Path, "nope.json"), "--out", Path.Combine(_dir.Path, "stats"));
        Assert.Equal(2, code);
        Assert.Contains("--ann", output);
        Assert.Contains("nope.json: file not found", output);
        var (code2, output2) = Run("data", "stats");
        Assert.Equal(2, code2);
        Assert.Contains("gfl data stats needs --config FILE, or --ann FILE", output2);
    }
}
