using Xunit;
using GflTrainer.Coco;
using GflTrainer.Tests;

namespace GflTrainer.Coco.Tests;

/// <summary>Malformed files fail with one line naming the file and where the reader stopped.</summary>
public sealed class CocoJsonErrorTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("gfl-cocoeval-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    string Write(string name, string text)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    const string OneImageGt = """
        {"images": [{"id": 1}], "categories": [{"id": 3, "name": "cat"}],
         "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [0, 0, 10, 10], "area": 100, "iscrowd": 0}]}
        """;

    [Fact]
    public void TruncatedDetections_ReportLineAndPosition()
    {
        var gt = CocoGroundTruth.Load(Write("gt.json", OneImageGt));
        string path = Write("dets.json", "[\n{\"image_id\": 1, \"category_id\": 3, \"bbox\": [0, 0, 10, 10], \"score\": 0.9},\n{\"image_id\": 1, \"bbox\": [0, 0");
        var e = Assert.Throws<CocoFormatException>(() => CocoDetections.Load(path, gt));
        Assert.StartsWith(path + ": invalid JSON at line 3, position ", e.Message);
        Assert.DoesNotContain("LineNumber", e.Message);
    }

    [Fact]
    public void SyntaxErrorInGroundTruth_ReportsLine()
    {
        string path = Write("gt.json", "{\"images\": [{\"id\": 1}],\n \"categories\": [{\"id\": 3, \"name\": \"cat\"}],\n \"annotations\": [}");
        var e = Assert.Throws<CocoFormatException>(() => CocoGroundTruth.Load(path));
        Assert.StartsWith(path + ": malformed JSON at line 3, column 18", e.Message);
    }

    [Fact]
    public void DetectionsObjectInsteadOfList_SaysAnArrayIsExpected()
    {
        var gt = CocoGroundTruth.Load(Write("gt.json", OneImageGt));
        string path = Write("dets.json", OneImageGt);
        var e = Assert.Throws<CocoFormatException>(() => CocoDetections.Load(path, gt));
        Assert.StartsWith($"{path}: expected a JSON array of detections", e.Message);
    }

    [Fact]
    public void MissingFile_SaysNotFound()
    {
        string path = Path.Combine(_dir, "nope.json");
        var e = Assert.Throws<CocoFormatException>(() => CocoGroundTruth.Load(path));
        Assert.Equal($"{path}: annotation file not found", e.Message);
    }

    [Fact]
    public void AnnotationWithoutArea_IsRejectedLikePycocotools()
    {
        string path = Write("gt.json", OneImageGt.Replace("\"area\": 100, ", ""));
        var e = Assert.Throws<CocoFormatException>(() => CocoGroundTruth.Load(path));
        Assert.Equal($"{path}: annotations[0] (id 1) has no \"area\"", e.Message);
    }

    [Fact]
    public void AnnotationWithoutIscrowd_IsRejected_ButAnImageWithoutFileNameIsEvaluated()
    {
        string path = Write("gt.json", OneImageGt.Replace(", \"iscrowd\": 0", ""));
        Assert.Equal($"{path}: annotations[0] (id 1) has no \"iscrowd\"",
            Assert.Throws<CocoFormatException>(() => CocoGroundTruth.Load(path)).Message);
        // OneImageGt's image has only an id: training would refuse it (no file_name), evaluation does not need one.
        Assert.Equal([1L], CocoGroundTruth.Load(Write("ok.json", OneImageGt)).ImageIds);
    }

    [Fact]
    public void FractionalId_IsRejected_ButIntegralFloatIdIsAccepted()
    {
        var gt = CocoGroundTruth.Load(Write("gt.json", OneImageGt.Replace("\"images\": [{\"id\": 1}]", "\"images\": [{\"id\": 1.0}]")));
        Assert.Equal([1L], gt.ImageIds);
        string path = Write("gt2.json", OneImageGt.Replace("\"images\": [{\"id\": 1}]", "\"images\": [{\"id\": 1.5}]"));
        var e = Assert.Throws<CocoFormatException>(() => CocoGroundTruth.Load(path));
        Assert.Equal($"{path}: images[0]: 'id' must be an integer", e.Message);
    }
}
