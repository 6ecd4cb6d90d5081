using GflTrainer.Coco;
using GflTrainer.Data;
using GflTrainer.Data.Conversion;
using Xunit;

namespace GflTrainer.Tests.Data;

public sealed class YoloConverterTests : IDisposable
{
    readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    string Out => Path.Combine(_dir.Path, "out");
    string Src => Path.Combine(_dir.Path, "yolo1");

    static CocoAnnotations Load(ConversionResult r, string split) => CocoAnnotations.Load(r.Splits.Single(s => s.Split == split).AnnotationFile);

    /// <summary>A flat YOLO folder: one 200x100 image <c>a.jpg</c> with the given label text, names dog, cat.</summary>
    void OneImage(string labels)
    {
        ConversionTestSets.Jpeg(Path.Combine(Src, "images", "a.jpg"), 200, 100);
        _dir.File("yolo1/labels/a.txt", labels);
        _dir.File("yolo1/data.yaml", "names:\n  - dog\n  - cat\n");
    }

    [Fact]
    public void RoundTrip_SyntheticSet_GivesTheOriginalBoxesWithinSixDecimals()
    {
        var coco = ConversionTestSets.Coco(_dir.Path);
        var yolo = ConversionTestSets.WriteYolo(_dir.Path, coco);
        var r = DatasetConverter.Run(SourceFormat.Yolo, yolo, Out);

        Assert.Equal(Path.Combine(yolo, "images"), r.ImageRoot);
        Assert.Equal(["train", "val"], r.Splits.Select(s => s.Split));
        foreach (var split in ConversionTestSets.Splits)
        {
            var orig = coco[split];
            var conv = Load(r, split);
            Assert.Equal(orig.Images.Select(i => (i.FileName, i.Width, i.Height)), conv.Images.Select(i => (i.FileName, i.Width, i.Height)));
            Assert.Equal(orig.Categories.Select(c => (c.Id, c.Name)), conv.Categories.Select(c => (c.Id, c.Name)));   // ids = class + 1
            Assert.Equal(orig.Annotations.Count, conv.Annotations.Count);
            var origImg = orig.Images.ToDictionary(i => i.Id, i => i.FileName);
            var convImg = conv.Images.ToDictionary(i => i.Id, i => i.FileName);
            for (int i = 0; i < orig.Annotations.Count; i++)
            {
                var (o, c) = (orig.Annotations[i], conv.Annotations[i]);
                Assert.Equal((origImg[o.ImageId], o.CategoryId), (convImg[c.ImageId], c.CategoryId));
                // 6 decimals of a 96 px side: within 96 * 5e-7 px, and the writer rounds to 1/1000.
                for (int k = 0; k < 4; k++) Assert.Equal(o.Bbox![k], c.Bbox![k], 0.002);
            }
            var check = DataChecker.Run(r.Splits.Single(s => s.Split == split).AnnotationFile, r.ImageRoot);
            Assert.True(check.Clean, string.Join("\n", check.Problems));
        }
        Assert.Empty(r.Report.Issues);
    }

    [Fact]
    public void EmptyAndMissingLabelFiles_KeepTheImageWithoutBoxes_AndAreReported()
    {
        OneImage("");
        ConversionTestSets.Jpeg(Path.Combine(Src, "images", "b.jpg"), 20, 10);
        _dir.File("yolo1/labels/orphan.txt", "0 0.5 0.5 0.1 0.1\n");
        var r = DatasetConverter.Run(SourceFormat.Yolo, Src, Out);
        var conv = Load(r, "all");
        Assert.Equal(["a.jpg", "b.jpg"], conv.Images.Select(i => i.FileName));
        Assert.Empty(conv.Annotations);
        Assert.Equal("labels/a.txt", Assert.Single(r.Report.Issues, i => i.Kind == ConversionIssueKind.EmptyLabelFile).Source);
        Assert.Equal("labels/b.txt", Assert.Single(r.Report.Issues, i => i.Kind == ConversionIssueKind.MissingLabelFile).Source);
        Assert.Equal("labels/orphan.txt", Assert.Single(r.Report.Issues, i => i.Kind == ConversionIssueKind.LabelWithoutImage).Source);
        Assert.Equal(2, r.Splits[0].ImagesWithoutBoxes);
    }

    [Fact]
    public void MalformedLines_AreSkippedWithFileAndLine()
    {
        OneImage("0 0.5 0.5 0.2 0.2\n1 0.5 0.5 0.2\n\n2 0.5 0.5 0.2 0.2\nx 0.5 0.5 0.2 0.2\n0 0.5 nan 0.2 0.2\n1 0.5 0.5 0.2 0.2 0.9\n1 0.25 0.5 0.1 0.2\n");
        var r = DatasetConverter.Run(SourceFormat.Yolo, Src, Out);
        var bad = r.Report.Issues.Where(i => i.Kind == ConversionIssueKind.MalformedBox).ToList();
        Assert.Equal(["labels/a.txt:2", "labels/a.txt:4", "labels/a.txt:5", "labels/a.txt:6", "labels/a.txt:7"], bad.Select(i => i.Source));
        Assert.Contains("not an index 0..1", bad[1].Message);
        Assert.Contains("'nan' is not a finite number", bad[3].Message);
        var conv = Load(r, "all");
        Assert.Equal([(1L, 80.0, 40.0, 40.0, 20.0), (2L, 40.0, 40.0, 20.0, 20.0)],
            conv.Annotations.Select(a => (a.CategoryId, a.Bbox![0], a.Bbox[1], a.Bbox[2], a.Bbox[3])));
        Assert.Equal(5, r.Splits[0].Skipped);
        Assert.Contains("labels/a.txt:6: field 3 'nan' is not a finite number", File.ReadAllText(r.ReportFile));
    }

    [Fact]
    public void BoxOutsideTheImage_IsClippedAndReported_SegmentBecomesItsBoundingBox()
    {
        OneImage("0 0.95 0.5 0.2 0.2\n1 0.1 0.1 0.3 0.1 0.2 0.4 0.15 0.3\n");
        var r = DatasetConverter.Run(SourceFormat.Yolo, Src, Out);
        var conv = Load(r, "all");
        Assert.Equal([(1L, 170.0, 40.0, 30.0, 20.0), (2L, 20.0, 10.0, 40.0, 30.0)],
            conv.Annotations.Select(a => (a.CategoryId, a.Bbox![0], a.Bbox[1], a.Bbox[2], a.Bbox[3])));
        Assert.Equal("labels/a.txt:1", Assert.Single(r.Report.Issues, i => i.Kind == ConversionIssueKind.BoxClipped).Source);
        Assert.Equal("labels/a.txt:2", Assert.Single(r.Report.Issues, i => i.Kind == ConversionIssueKind.SegmentToBox).Source);
        Assert.Equal(2, r.Splits[0].Repaired);
        Assert.True(DataChecker.Run(r.Splits[0].AnnotationFile, r.ImageRoot).Clean);
    }

    [Theory]
    [InlineData("names: [dog, cat]\n")]
    [InlineData("nc: 2\nnames:\n  0: dog\n  1: cat\n")]
    [InlineData("names: {1: cat, 0: dog}\n")]
    public void DataYamlNames_AsListOrMap_GiveIdsByClassIndex(string yaml)
    {
        OneImage("1 0.5 0.5 0.2 0.2\n");
        _dir.File("yolo1/data.yaml", yaml);
        var r = DatasetConverter.Run(SourceFormat.Yolo, Src, Out);
        var conv = Load(r, "all");
        Assert.Equal([(1L, "dog"), (2L, "cat")], conv.Categories.Select(c => (c.Id, c.Name)));
        Assert.Equal(2, Assert.Single(conv.Annotations).CategoryId);
    }

    [Fact]
    public void DataYamlMapWithAGap_IsRefused()
    {
        OneImage("0 0.5 0.5 0.2 0.2\n");
        _dir.File("yolo1/data.yaml", "names:\n  0: dog\n  2: cat\n");
        var e = Assert.Throws<GflConfigException>(() => DatasetConverter.Run(SourceFormat.Yolo, Src, Out));
        Assert.Contains("without gaps", e.Message);
    }

    [Fact]
    public void ClassesTxt_IsUsedWithoutDataYaml_AndNoNamesAtAllIsAClearError()
    {
        OneImage("0 0.5 0.5 0.2 0.2\n");
        File.Delete(Path.Combine(Src, "data.yaml"));
        var e = Assert.Throws<GflConfigException>(() => DatasetConverter.Run(SourceFormat.Yolo, Src, Out));
        Assert.Contains("no class names: expected data.yaml (names:), classes.txt or obj.names", e.Message);
        _dir.File("yolo1/classes.txt", "person\n");
        Assert.Equal("person", Assert.Single(Load(DatasetConverter.Run(SourceFormat.Yolo, Src, Out), "all").Categories).Name);
    }

    [Fact]
    public void ExifRotatedImage_BoxesScaleByItsOrientedSize()
    {
        ConversionTestSets.Jpeg(Path.Combine(_dir.Path, "plain.jpg"), 64, 32);
        Directory.CreateDirectory(Path.Combine(Src, "images"));
        File.WriteAllBytes(Path.Combine(Src, "images", "a.jpg"), ImageDecoderTests.WithExifOrientation(File.ReadAllBytes(Path.Combine(_dir.Path, "plain.jpg")), 6));
        _dir.File("yolo1/labels/a.txt", "0 0.5 0.5 0.5 0.25\n");
        _dir.File("yolo1/classes.txt", "dog\n");
        var r = DatasetConverter.Run(SourceFormat.Yolo, Src, Out);
        var conv = Load(r, "all");
        Assert.Equal((32, 64), (conv.Images[0].Width, conv.Images[0].Height));
        Assert.Equal([8.0, 24, 16, 16], conv.Annotations[0].Bbox);
        Assert.Equal((32, 64), ImageDecoder.ReadSize(Path.Combine(Src, "images", "a.jpg")));
        Assert.True(DataChecker.Run(r.Splits[0].AnnotationFile, r.ImageRoot).Clean);
    }

    [Fact]
    public void UndecodableImage_IsSkippedAndReported()
    {
        OneImage("0 0.5 0.5 0.2 0.2\n");
        _dir.File("yolo1/images/broken.jpg", "not a jpeg");
        var r = DatasetConverter.Run(SourceFormat.Yolo, Src, Out);
        Assert.Equal(["a.jpg"], Load(r, "all").Images.Select(i => i.FileName));
        Assert.Equal("images/broken.jpg", Assert.Single(r.Report.Issues, i => i.Kind == ConversionIssueKind.UndecodableImage).Source);
    }

    [Fact]
    public void NotAYoloFolder_IsAConfigErrorNamingWhatIsMissing()
    {
        Directory.CreateDirectory(Path.Combine(Src, "images"));
        var e = Assert.Throws<GflConfigException>(() => DatasetConverter.Run(SourceFormat.Yolo, Src, Out));
        Assert.Contains("not a YOLO folder: expected images/ and labels/", e.Message);
        Assert.Contains("no labels/ found", e.Message);
    }
}
