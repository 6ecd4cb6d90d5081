using GflTrainer.Coco;
using GflTrainer.Data;
using GflTrainer.Data.Conversion;
using Xunit;

namespace GflTrainer.Tests.Data;

public sealed class VocConverterTests : IDisposable
{
    readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    string Out => Path.Combine(_dir.Path, "out");

    static CocoAnnotations Load(ConversionResult r, string split) => CocoAnnotations.Load(r.Splits.Single(s => s.Split == split).AnnotationFile);

    /// <summary>A one-image VOC folder (200x100 image <c>a.jpg</c>) with the given objects and no ImageSets.</summary>
    string OneImage(params string[] objects)
    {
        var voc = Path.Combine(_dir.Path, "voc1");
        ConversionTestSets.Jpeg(Path.Combine(voc, "JPEGImages", "a.jpg"), 200, 100);
        _dir.File("voc1/Annotations/a.xml", ConversionTestSets.VocXml("a.jpg", 200, 100, objects));
        return voc;
    }

    [Fact]
    public void RoundTrip_SyntheticSet_GivesTheOriginalImagesAndBoxes()
    {
        var coco = ConversionTestSets.Coco(_dir.Path);
        var voc = ConversionTestSets.WriteVoc(_dir.Path, coco);
        var r = DatasetConverter.Run(SourceFormat.Voc, voc, Out);

        Assert.Equal(Path.Combine(voc, "JPEGImages"), r.ImageRoot);
        Assert.Equal(["train", "val"], r.Splits.Select(s => s.Split));
        foreach (var split in ConversionTestSets.Splits)
        {
            var orig = coco[split];
            var conv = Load(r, split);
            Assert.Equal(orig.Images.Select(i => (Path.GetFileName(i.FileName), i.Width, i.Height)), conv.Images.Select(i => (i.FileName, i.Width, i.Height)));
            // Not all 20 VOC names: the names found, sorted, ids 1..N.
            Assert.Equal(["ellipse", "rectangle", "triangle"], conv.Categories.Select(c => c.Name));
            Assert.Equal([1L, 2, 3], conv.Categories.Select(c => c.Id));
            var origNames = orig.Categories.ToDictionary(c => c.Id, c => c.Name);
            var convNames = conv.Categories.ToDictionary(c => c.Id, c => c.Name);
            var origImg = orig.Images.ToDictionary(i => i.Id, i => Path.GetFileName(i.FileName));
            var convImg = conv.Images.ToDictionary(i => i.Id, i => i.FileName);
            Assert.Equal(orig.Annotations.Select(a => (origImg[a.ImageId], origNames[a.CategoryId], string.Join(",", a.Bbox!), a.Area)),
                conv.Annotations.Select(a => (convImg[a.ImageId], convNames[a.CategoryId], string.Join(",", a.Bbox!), a.Area)));
            Assert.All(conv.Annotations, a => Assert.False(a.IsCrowd));
            var check = DataChecker.Run(r.Splits.Single(s => s.Split == split).AnnotationFile, r.ImageRoot);
            Assert.True(check.Clean, string.Join("\n", check.Problems));
        }
        Assert.Empty(r.Report.Issues);
    }

    [Fact]
    public void SameInput_WritesTheSameBytes()
    {
        var voc = ConversionTestSets.WriteVoc(_dir.Path, ConversionTestSets.Coco(_dir.Path));
        var first = DatasetConverter.Run(SourceFormat.Voc, voc, Out).Splits.Select(s => File.ReadAllBytes(s.AnnotationFile)).ToList();
        var again = DatasetConverter.Run(SourceFormat.Voc, voc, Out).Splits.Select(s => File.ReadAllBytes(s.AnnotationFile)).ToList();
        Assert.Equal(first, again);
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(Out, "annotations"), "*.tmp"));
    }

    [Fact]
    public void Difficult_IsWrittenAsIsCrowd_AndCounted_TruncatedStaysAPlainBox()
    {
        var voc = OneImage(ConversionTestSets.VocObject("dog", 11, 21, 61, 81, difficult: 1),
                           ConversionTestSets.VocObject("cat", 101, 11, 151, 51, truncated: 1));
        var r = DatasetConverter.Run(SourceFormat.Voc, voc, Out);
        var conv = Load(r, "all");
        Assert.Equal(ClassNames.Voc, conv.Categories.Select(c => c.Name));   // every name is a VOC class: the standard 20
        Assert.Equal([true, false], conv.Annotations.Select(a => a.IsCrowd!.Value));
        Assert.Equal([10.0, 20, 50, 60], conv.Annotations[0].Bbox);
        Assert.Equal(12, conv.Annotations[0].CategoryId);   // dog
        Assert.Equal(1, r.Splits[0].CrowdBoxes);
        Assert.Equal(1, r.Report.Count("all", ConversionIssueKind.Difficult));
        Assert.Equal(1, r.Report.Count("all", ConversionIssueKind.Truncated));
        Assert.Contains("iscrowd", File.ReadAllText(r.ReportFile));
    }

    [Fact]
    public void BoxOutsideTheImage_IsClippedAndReported_BoxWithoutAreaIsSkipped()
    {
        var voc = OneImage(ConversionTestSets.VocObject("dog", 0, 51, 230, 90),      // left of pixel 1 and right of the 200 px image
                           ConversionTestSets.VocObject("cat", 250, 10, 260, 20));    // wholly outside
        var r = DatasetConverter.Run(SourceFormat.Voc, voc, Out);
        var conv = Load(r, "all");
        Assert.Equal([0.0, 50, 200, 39], Assert.Single(conv.Annotations).Bbox);
        var clipped = Assert.Single(r.Report.Issues, i => i.Kind == ConversionIssueKind.BoxClipped);
        Assert.Equal("Annotations/a.xml:9", clipped.Source);   // the <object> element's line
        Assert.Equal(ConversionAction.Repaired, clipped.Action);
        var skipped = Assert.Single(r.Report.Issues, i => i.Kind == ConversionIssueKind.DegenerateBox);
        Assert.Equal("Annotations/a.xml:20", skipped.Source);
        Assert.Equal((1, 1), (r.Splits[0].Skipped, r.Splits[0].Repaired));
        Assert.True(DataChecker.Run(r.Splits[0].AnnotationFile, r.ImageRoot).Clean);
    }

    [Fact]
    public void MalformedXml_IsReportedWithFileAndLine_AndTheFileSkipped()
    {
        var voc = OneImage(ConversionTestSets.VocObject("dog", 11, 21, 61, 81));
        ConversionTestSets.Jpeg(Path.Combine(voc, "JPEGImages", "b.jpg"), 50, 50);
        _dir.File("voc1/Annotations/b.xml", "<annotation>\n  <filename>b.jpg</filename>\n  <object><name>dog</name>\n</annotation>\n");
        var r = DatasetConverter.Run(SourceFormat.Voc, voc, Out);
        var bad = Assert.Single(r.Report.Issues);
        Assert.Equal(ConversionIssueKind.MalformedFile, bad.Kind);
        Assert.Equal("Annotations/b.xml:4", bad.Source);
        Assert.Contains("malformed XML", bad.Message);
        Assert.Equal(["a.jpg"], Load(r, "all").Images.Select(i => i.FileName));
        Assert.Contains("Annotations/b.xml:4: malformed XML", File.ReadAllText(r.ReportFile));
    }

    [Fact]
    public void MissingImage_NonNumberCoordinate_AndWrongXmlSize_AreReported()
    {
        var voc = OneImage(ConversionTestSets.VocObject("dog", 11, 21, 61, 81),
                           ConversionTestSets.VocObject("cat", 11, 21, 61, 81).Replace("<xmax>61</xmax>", "<xmax>sixty</xmax>"));
        _dir.File("voc1/Annotations/a.xml", File.ReadAllText(Path.Combine(voc, "Annotations", "a.xml")).Replace("<width>200</width>", "<width>300</width>"));
        _dir.File("voc1/Annotations/gone.xml", ConversionTestSets.VocXml("gone.jpg", 10, 10, [ConversionTestSets.VocObject("dog", 1, 1, 5, 5)]));
        var r = DatasetConverter.Run(SourceFormat.Voc, voc, Out);
        Assert.Equal(ConversionIssueKind.MissingImage, Assert.Single(r.Report.Issues, i => i.Kind == ConversionIssueKind.MissingImage).Kind);
        Assert.Contains("'sixty' is not a number", Assert.Single(r.Report.Issues, i => i.Kind == ConversionIssueKind.MalformedBox).Message);
        Assert.Contains("300x100", Assert.Single(r.Report.Issues, i => i.Kind == ConversionIssueKind.SizeMismatch).Message);
        var img = Assert.Single(Load(r, "all").Images);
        Assert.Equal((200, 100), (img.Width, img.Height));
    }

    [Fact]
    public void ClassesFile_FixesOrderAndIds_AndUnknownNamesAreSkipped()
    {
        var voc = OneImage(ConversionTestSets.VocObject("dog", 11, 21, 61, 81), ConversionTestSets.VocObject("cat", 11, 21, 61, 81));
        var classes = _dir.File("classes.txt", "person\ndog\n");
        var r = DatasetConverter.Run(SourceFormat.Voc, voc, Out, classes);
        var conv = Load(r, "all");
        Assert.Equal([(1L, "person"), (2L, "dog")], conv.Categories.Select(c => (c.Id, c.Name)));
        Assert.Equal(2, Assert.Single(conv.Annotations).CategoryId);
        Assert.Equal("Annotations/a.xml:20", Assert.Single(r.Report.Issues, i => i.Kind == ConversionIssueKind.UnknownClass).Source);
    }

    [Fact]
    public void ExifRotatedImage_GetsItsOrientedSize()
    {
        var voc = Path.Combine(_dir.Path, "voc1");
        ConversionTestSets.Jpeg(Path.Combine(_dir.Path, "plain.jpg"), 64, 32);
        Directory.CreateDirectory(Path.Combine(voc, "JPEGImages"));
        File.WriteAllBytes(Path.Combine(voc, "JPEGImages", "a.jpg"), ImageDecoderTests.WithExifOrientation(File.ReadAllBytes(Path.Combine(_dir.Path, "plain.jpg")), 6));
        _dir.File("voc1/Annotations/a.xml", ConversionTestSets.VocXml("a.jpg", 32, 64, [ConversionTestSets.VocObject("dog", 1, 41, 31, 61)]));
        var r = DatasetConverter.Run(SourceFormat.Voc, voc, Out);
        var img = Assert.Single(Load(r, "all").Images);
        Assert.Equal((32, 64), (img.Width, img.Height));
        Assert.Empty(r.Report.Issues);   // <size> agrees with the oriented size; the box fits only the oriented image
        Assert.True(DataChecker.Run(r.Splits[0].AnnotationFile, r.ImageRoot).Clean);
    }

    [Fact]
    public void DevkitRoot_JoinsTheYearsPerSplit_UnderTheDevkitFolder()
    {
        foreach (var year in new[] { "VOC2007", "VOC2012" })
        {
            ConversionTestSets.Jpeg(Path.Combine(_dir.Path, "devkit", year, "JPEGImages", "a.jpg"), 40, 30);
            _dir.File($"devkit/{year}/Annotations/a.xml", ConversionTestSets.VocXml("a.jpg", 40, 30, [ConversionTestSets.VocObject("dog", 2, 2, 20, 20)]));
            _dir.File($"devkit/{year}/ImageSets/Main/trainval.txt", "a\n");
        }
        var devkit = Path.Combine(_dir.Path, "devkit");
        var r = DatasetConverter.Run(SourceFormat.Voc, devkit, Out);
        Assert.Equal(devkit, r.ImageRoot);
        Assert.Equal(["VOC2007/JPEGImages/a.jpg", "VOC2012/JPEGImages/a.jpg"], Load(r, "trainval").Images.Select(i => i.FileName));
        Assert.True(DataChecker.Run(r.Splits[0].AnnotationFile, r.ImageRoot).Clean);
    }

    [Fact]
    public void NotAVocFolder_IsAConfigErrorNamingWhatWasExpected()
    {
        Directory.CreateDirectory(Path.Combine(_dir.Path, "src", "images"));
        Directory.CreateDirectory(Path.Combine(_dir.Path, "src", "labels"));
        var e = Assert.Throws<GflConfigException>(() => DatasetConverter.Run(SourceFormat.Voc, Path.Combine(_dir.Path, "src"), Out));
        Assert.Contains("not a Pascal VOC folder: expected Annotations/*.xml and JPEGImages/", e.Message);
        Assert.Contains("use --from yolo", e.Message);
        Assert.False(Directory.Exists(Out));
    }
}
