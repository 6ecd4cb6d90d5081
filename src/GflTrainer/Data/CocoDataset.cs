using GflTrainer.Coco;
namespace GflTrainer.Data;

/// <summary>What was left out while building a <see cref="CocoDataset"/>, for the start-of-run log line.</summary>
public sealed record CocoDatasetStats(
    int ImagesInFile, int ImagesKept, int SkippedWithoutAnnotations, int SkippedSmallerThanMinSize,
    int BoxesKept, int CrowdRegions, int DroppedTinyBoxes, int DroppedOutsideImage, int DroppedUnknownCategory,
    int DroppedNonFinite);

/// <summary>Images and ground truth of one COCO split, as mmdetection's <c>CocoDataset</c> prepares them
/// (mmdet 2.x <c>_parse_ann_info</c> / <c>_filter_imgs</c>, 3.x <c>parse_data_info</c> / <c>filter_data</c>).</summary>
internal sealed class CocoDataset : IDetectionDataset
{
    CocoDataset(string source, string sourceSha256, string imageRoot, CategoryMap categories, IReadOnlyList<DatasetEntry> entries, CocoDatasetStats stats)
    {
        Source = source;
        SourceSha256 = sourceSha256;
        ImageRoot = imageRoot;
        Categories = categories;
        Entries = entries;
        Stats = stats;
    }

    /// <summary>The annotation file.</summary>
    public string Source { get; }
    /// <summary>SHA-256 of the annotation file's bytes (<see cref="CocoAnnotations.Sha256"/>).</summary>
    public string SourceSha256 { get; }
    public string ImageRoot { get; }
    public CategoryMap Categories { get; }
    public IReadOnlyList<DatasetEntry> Entries { get; }
    public CocoDatasetStats Stats { get; }
    public int Count => Entries.Count;

    /// <summary>Full path of an entry's image. <c>file_name</c> is relative to the image root and may not leave it.</summary>
    public string PathOf(DatasetEntry e) => ResolveImagePath(ImageRoot, e.FileName)
        ?? throw new DataFileException(Source, $"file_name '{e.FileName}' (image id {e.ImageId}) escapes the image root {ImageRoot}");

    /// <summary>The file under <paramref name="root"/>, or null when <paramref name="fileName"/> is absolute or
    /// climbs out of the root (<c>../</c>): such names are refused, not followed.</summary>
    public static string? ResolveImagePath(string root, string fileName)
    {
        if (string.IsNullOrEmpty(fileName) || Path.IsPathRooted(fileName)) return null;
        var fullRoot = Path.GetFullPath(root);
        var full = Path.GetFullPath(Path.Combine(fullRoot, fileName));
        var rootWithSep = fullRoot.EndsWith(Path.DirectorySeparatorChar) ? fullRoot : fullRoot + Path.DirectorySeparatorChar;
        return full.StartsWith(rootWithSep, StringComparison.Ordinal) ? full : null;
    }

    /// <summary>Training view: images without annotations of a known category (filter_empty_gt) and images with
    /// min(w, h) &lt; <paramref name="minSize"/> are skipped. As in mmdetection the emptiness test looks at the raw
    /// annotations, so an image whose only annotations are crowd regions or tiny boxes stays (with no GT).</summary>
    public static CocoDataset ForTraining(CocoAnnotations coco, string imageRoot, int minSize = 32, CategoryMap? categories = null) =>
        Build(coco, imageRoot, filterEmptyGt: true, minSize, categories);

    /// <summary>Evaluation view: every image, in file order.</summary>
    public static CocoDataset ForEvaluation(CocoAnnotations coco, string imageRoot, CategoryMap? categories = null) =>
        Build(coco, imageRoot, filterEmptyGt: false, minSize: 0, categories);

    static CocoDataset Build(CocoAnnotations coco, string imageRoot, bool filterEmptyGt, int minSize, CategoryMap? categories)
    {
        if (coco.Issues.Count > 0)
            throw new DataFileException(coco.SourceFile, $"{coco.Issues.Count} invalid entries, first: {coco.Issues[0].Where}: " +
                $"{coco.Issues[0].Message} (run 'gfl data check' for the full list)");
        var map = categories ?? new CategoryMap(coco.Categories.Select(c => new CategoryEntry(c.Id, c.Name)).ToList());
        var byImage = new Dictionary<long, List<CocoAnnotation>>();
        foreach (var a in coco.Annotations)
        {
            if (!byImage.TryGetValue(a.ImageId, out var list)) byImage[a.ImageId] = list = [];
            list.Add(a);
        }

        int tiny = 0, outside = 0, unknown = 0, nonFinite = 0, kept = 0, crowd = 0, noAnn = 0, small = 0;
        var entries = new List<DatasetEntry>(coco.Images.Count);
        var seen = new HashSet<long>();
        foreach (var img in coco.Images)
        {
            if (!seen.Add(img.Id)) throw new DataFileException(coco.SourceFile, $"duplicate image id {img.Id}");
            var anns = byImage.GetValueOrDefault(img.Id) ?? [];
            if (filterEmptyGt && !anns.Any(a => map.TryGetLabel(a.CategoryId, out _))) { noAnn++; continue; }
            if (Math.Min(img.Width, img.Height) < minSize) { small++; continue; }

            var boxes = new List<float>(anns.Count * 4);
            var labels = new List<long>(anns.Count);
            var ignored = new List<float>();
            foreach (var a in anns)
            {
                var b = a.Bbox!;
                double x = b[0], y = b[1], w = b[2], h = b[3];
                if (!double.IsFinite(x) || !double.IsFinite(y) || !double.IsFinite(w) || !double.IsFinite(h)) { nonFinite++; continue; }
                // mmdetection's order: zero overlap with the image, then area <= 0 or w/h < 1, then unknown category.
                double interW = Math.Max(0, Math.Min(x + w, img.Width) - Math.Max(x, 0));
                double interH = Math.Max(0, Math.Min(y + h, img.Height) - Math.Max(y, 0));
                if (interW * interH == 0) { outside++; continue; }
                if ((a.Area ?? w * h) <= 0 || w < 1 || h < 1) { tiny++; continue; }
                if (!map.TryGetLabel(a.CategoryId, out int label)) { unknown++; continue; }
                var xyxy = new[] { (float)x, (float)y, (float)(x + w), (float)(y + h) };
                if (a.IsCrowd == true) { ignored.AddRange(xyxy); crowd++; }
                else { boxes.AddRange(xyxy); labels.Add(label); kept++; }
            }
            entries.Add(new DatasetEntry(img.Id, img.FileName, img.Width, img.Height, boxes.ToArray(), labels.ToArray(), ignored.ToArray()));
        }
        var stats = new CocoDatasetStats(coco.Images.Count, entries.Count, noAnn, small, kept, crowd, tiny, outside, unknown, nonFinite);
        return new CocoDataset(coco.SourceFile, coco.Sha256, imageRoot, map, entries, stats);
    }
}
