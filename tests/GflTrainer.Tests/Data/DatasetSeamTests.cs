using GflTrainer.Coco;
using GflTrainer.Data;
using GflTrainer.Data.Transforms;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Data;

/// <summary>The loader reads any <see cref="IDetectionDataset"/>, not only COCO: a format that lists images and boxes
/// its own way (here a plain list, as a YOLO or VOC reader would build it) trains through the same pipeline.</summary>
public sealed class DatasetSeamTests : IDisposable
{
    readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>Images in one folder, ground truth given directly.</summary>
    sealed class ListDataset(string folder, CategoryMap categories, IReadOnlyList<DatasetEntry> entries) : IDetectionDataset
    {
        public string Source => folder;
        public CategoryMap Categories => categories;
        public IReadOnlyList<DatasetEntry> Entries => entries;
        public string PathOf(DatasetEntry entry) => Path.Combine(folder, entry.FileName);
    }

    [Fact]
    public void Loader_ReadsANonCocoDataset_LikeTheCocoOneWithTheSameContent()
    {
        SyntheticShapes.Write(_dir.Path, new SyntheticShapesOptions { Seed = 3, TrainImages = 4, ValImages = 0, ImageSize = 64, MinSide = 8, MaxSide = 40 });
        var images = Path.Combine(_dir.Path, "images");
        var coco = CocoDataset.ForTraining(CocoAnnotations.Load(Path.Combine(_dir.Path, "annotations", "instances_train.json")), images);
        var other = new ListDataset(images, coco.Categories, coco.Entries.ToList());
        var options = new LoaderOptions { BatchSize = 2, Workers = 0, Seed = 7 };
        var scale = new MultiScale([new ResizeScale(96, 64)]);

        var expected = Describe(DetectionLoader.ForTraining(coco, options, CPU, scale));
        var actual = Describe(DetectionLoader.ForTraining(other, options, CPU, scale));
        Assert.Equal(2, actual.Count);
        Assert.Equal(expected, actual);
    }

    static List<string> Describe(DetectionLoader loader)
    {
        var result = new List<string>();
        foreach (var b in loader.Epoch(0))
            using (b)
                result.Add(string.Join("|", b.Metas.Select(m => m.ImageId)) + " " + b.Images.sum().item<float>() + " " +
                    string.Join(";", b.GtBoxes.Select(t => string.Join(",", t.data<float>().ToArray()))));
        return result;
    }
}
