namespace GflTrainer.Data.Statistics;

/// <summary>Mean, median and maximum of a list of values (0 for an empty list, so the JSON never holds NaN).</summary>
public sealed record ValueSummary(double Mean, double Median, double Max)
{
    public static ValueSummary Of(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        if (sorted.Length == 0) return new ValueSummary(0, 0, 0);
        int n = sorted.Length;
        double median = n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
        return new ValueSummary(sorted.Average(), median, sorted[^1]);
    }
}

/// <summary>One category of a split: its boxes (targets, crowd regions not included) and the images it appears in.</summary>
public sealed record ClassStatistics(long CategoryId, string Name, long Boxes, long Images);

/// <summary>Everything <c>gfl data stats</c> reports for one split. Box measures are in input pixels after the
/// configured resize (<see cref="ResizedImage"/>); crowd regions are counted apart and measured nowhere else.</summary>
/// <param name="View">"training" (data.filter_empty_gt and data.min_size applied, as gfl train reads the train split)
/// or "evaluation" (every image, as the metric reads val and test).</param>
/// <param name="Rules">what loading the split by those rules kept and dropped (images and boxes).</param>
/// <param name="ImagesWithoutBoxes">kept images with no box (e.g. only crowd regions or only dropped boxes).</param>
/// <param name="SizeCounts">boxes per COCO size range (<see cref="BoxSizes"/>), small, medium, large.</param>
/// <param name="SizeHistogram">sqrt(w·h); bins of a width that divides 32 and 96, so those are edges.</param>
/// <param name="AspectLog2Histogram">log2(w/h): 0 square, 1 twice as wide as tall, −1 twice as tall.</param>
public sealed record SplitStatistics(
    string Split,
    string AnnFile,
    string View,
    CocoDatasetStats Rules,
    int Images,
    int ImagesWithoutBoxes,
    long Boxes,
    long CrowdBoxes,
    IReadOnlyList<ClassStatistics> Classes,
    ValueSummary ObjectsPerImage,
    BinCounts ObjectsPerImageHistogram,
    ValueSummary ResizedImageWidth,
    ValueSummary ResizedImageHeight,
    IReadOnlyList<long> SizeCounts,
    ValueSummary Size,
    ValueSummary Width,
    ValueSummary Height,
    ValueSummary Aspect,
    BinCounts SizeHistogram,
    BinCounts WidthHistogram,
    BinCounts HeightHistogram,
    BinCounts AspectLog2Histogram,
    AnchorCoverage Coverage);
