using GflTrainer.Coco;
using GflTrainer.Config;
using GflTrainer.Data.Transforms;

namespace GflTrainer.Data.Statistics;

/// <summary>What <c>gfl data stats</c> computes: the resize and anchor settings the numbers depend on, and per split
/// counts, box size and shape distributions and anchor coverage (<see cref="SplitStatistics"/>). Only the annotation
/// file is read (image sizes come from its width/height), so a COCO-size file takes seconds, not an epoch.</summary>
/// <param name="ImgScale">data.img_scale [long, short] the boxes are resized with.</param>
/// <param name="MultiscaleIgnored">true when data.multiscale is set: training then draws other scales, these numbers
/// are for img_scale (the test scale).</param>
public sealed record DatasetStatistics(
    IReadOnlyList<int> ImgScale,
    bool KeepRatio,
    int PadDivisor,
    bool MultiscaleIgnored,
    string Head,
    IReadOnlyList<int> Strides,
    double OctaveBaseScale,
    int ScalesPerOctave,
    IReadOnlyList<double> Ratios,
    IReadOnlyList<SplitStatistics> Splits)
{
    static readonly double[] PixelBinWidths = [4, 8, 16, 32];
    static readonly double[] CountBinWidths = [1, 2, 5, 10, 20, 50, 100, 200, 500];
    const int MaxBins = 64;
    const double AspectLog2Limit = 3;       // 1/8 .. 8; the outer bins hold the rest
    const double AspectLog2Step = 0.25;

    /// <param name="splits">(name, split): "train" is read as training reads it, any other name as evaluation does.</param>
    public static DatasetStatistics Compute(GflConfig config, IReadOnlyList<(string Name, SplitConfig Split)> splits)
    {
        var data = config.Data;
        var head = config.Model.Head;
        return new DatasetStatistics(
            [Math.Max(data.ImgScale[0], data.ImgScale[1]), Math.Min(data.ImgScale[0], data.ImgScale[1])],
            data.KeepRatio, data.PadDivisor, data.Multiscale is not null,
            head.Type.ToString().ToLowerInvariant(), head.Strides, head.OctaveBaseScale, head.ScalesPerOctave, head.Ratios,
            splits.Select(s => ForSplit(s.Name, s.Split, config)).ToArray());
    }

    static SplitStatistics ForSplit(string name, SplitConfig split, GflConfig config)
    {
        if (!File.Exists(split.AnnFile))
            throw new GflConfigException($"data.{name}.ann_file {split.AnnFile}: file not found") { Key = $"data.{name}.ann_file" };
        var coco = CocoAnnotations.Load(split.AnnFile);
        bool training = name == "train";
        var ds = training ? DataPipelineFactory.TrainingView(coco, split.ImgPrefix, config.Data)
            : CocoDataset.ForEvaluation(coco, split.ImgPrefix);
        var scale = DataPipelineFactory.TestScale(config.Data);
        var images = ds.Entries.Select(e => ResizedImage.From(e, scale)).ToArray();

        var widths = new List<double>();
        var heights = new List<double>();
        foreach (var img in images)
            for (int i = 0; i < img.BoxCount; i++)
            {
                var (w, h) = img.BoxSize(i);
                widths.Add(w);
                heights.Add(h);
            }
        var sizes = widths.Zip(heights, (w, h) => Math.Sqrt(w * h)).ToArray();
        // A box clipped to zero width or height has no aspect; it still counts everywhere else.
        var aspects = widths.Zip(heights, (w, h) => w > 0 && h > 0 ? Math.Log2(w / h) : double.NaN).Where(double.IsFinite).ToArray();
        var perImage = images.Select(i => (double)i.BoxCount).ToArray();
        var sizeCounts = BoxSizes.All.Select(s => (long)widths.Zip(heights).Count(b => BoxSizes.Of(b.First, b.Second) == s)).ToArray();

        var classes = ds.Categories.Categories.Select((c, label) => new ClassStatistics(c.Id, c.Name,
            images.Sum(i => (long)i.Labels.Count(l => l == label)),
            images.Count(i => i.Labels.Contains(label)))).ToArray();

        var countEdges = BinCounts.LinearEdges(perImage.DefaultIfEmpty(0).Max(), CountBinWidths, MaxBins).Select(e => e - 0.5).ToArray();
        double maxSide = widths.Concat(heights).DefaultIfEmpty(0).Max();
        var sizeEdges = BinCounts.LinearEdges(sizes.DefaultIfEmpty(0).Max(), PixelBinWidths, MaxBins);
        var sideEdges = BinCounts.LinearEdges(maxSide, PixelBinWidths, MaxBins);
        int aspectBins = (int)(2 * AspectLog2Limit / AspectLog2Step);
        var aspectEdges = Enumerable.Range(0, aspectBins + 1).Select(i => -AspectLog2Limit + i * AspectLog2Step).ToArray();

        return new SplitStatistics(
            name, split.AnnFile, training ? "training" : "evaluation", ds.Stats,
            images.Length,
            images.Count(i => i.BoxCount == 0),
            widths.Count,
            images.Sum(i => (long)i.CrowdBoxes.Length / 4),
            classes,
            ValueSummary.Of(perImage),
            BinCounts.Of(perImage, countEdges),
            ValueSummary.Of(images.Select(i => (double)i.Width)),
            ValueSummary.Of(images.Select(i => (double)i.Height)),
            sizeCounts,
            ValueSummary.Of(sizes),
            ValueSummary.Of(widths),
            ValueSummary.Of(heights),
            ValueSummary.Of(aspects.Select(a => Math.Pow(2, a))),
            BinCounts.Of(sizes, sizeEdges),
            BinCounts.Of(widths, sideEdges),
            BinCounts.Of(heights, sideEdges),
            BinCounts.Of(aspects, aspectEdges),
            AnchorCoverage.Compute(config.Model, config.Data.PadDivisor, images, ds.Categories));
    }
}
