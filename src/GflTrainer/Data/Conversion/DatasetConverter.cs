namespace GflTrainer.Data.Conversion;

/// <summary>Source formats <c>gfl data convert</c> reads.</summary>
public enum SourceFormat { Voc, Yolo }

/// <summary>What was written for one split, for the command's summary.</summary>
public sealed record SplitSummary(string Split, string AnnotationFile, int Images, int Boxes, int CrowdBoxes,
    int ImagesWithoutBoxes, int Skipped, int Repaired);

/// <summary>The result of a conversion: where the images are (the config's <c>img_prefix</c>), the files written
/// and the report.</summary>
public sealed record ConversionResult(string ImageRoot, IReadOnlyList<CategoryEntry> Categories,
    IReadOnlyList<SplitSummary> Splits, ConversionReport Report, string ReportFile);

/// <summary>Reads a VOC or YOLO folder and writes <c>OUT/annotations/instances_&lt;split&gt;.json</c> (COCO) per split
/// plus <c>OUT/conversion_report.txt</c>. Images are not copied: file names are relative to the source's image
/// folder, which the config names as <c>img_prefix</c> (a copy of a large set would double its disk use).</summary>
public static class DatasetConverter
{
    public static ConversionResult Run(SourceFormat from, string source, string outDir, string? classesFile = null)
    {
        if (!Directory.Exists(source)) throw new GflConfigException($"SRC {source}: folder not found") { Key = "SRC" };
        var classes = classesFile is null ? null : ClassNames.ReadFile(classesFile);
        ConvertedDataset data;
        try
        {
            data = from == SourceFormat.Voc ? VocConverter.Convert(source, classes) : YoloConverter.Convert(source, classes);
        }
        catch (GflConfigException e) when (e.Key == "SRC" && OtherLayout(from, source) is { } other)
        {
            throw new GflConfigException($"{e.Message} (it looks like a {other.ToString().ToUpperInvariant()} folder: use --from {other.ToString().ToLowerInvariant()})", e) { Key = "SRC" };
        }

        var summaries = new List<SplitSummary>();
        foreach (var split in data.Splits)
        {
            var file = Path.Combine(outDir, "annotations", $"instances_{split.Name}.json");
            CocoDatasetWriter.Write(file, split, data.Categories);
            summaries.Add(new SplitSummary(split.Name, file, split.Images.Count, split.Images.Sum(i => i.Boxes.Count),
                split.Images.Sum(i => i.Boxes.Count(b => b.IsCrowd)), split.Images.Count(i => i.Boxes.Count == 0),
                data.Report.Count(split.Name, ConversionAction.Skipped), data.Report.Count(split.Name, ConversionAction.Repaired)));
        }
        var reportFile = Path.Combine(outDir, "conversion_report.txt");
        WriteReport(reportFile, from, source, data, summaries);
        return new ConversionResult(data.ImageRoot, data.Categories, summaries, data.Report, reportFile);
    }

    static SourceFormat? OtherLayout(SourceFormat from, string source) => from switch
    {
        SourceFormat.Voc when YoloConverter.IsLayout(source) => SourceFormat.Yolo,
        SourceFormat.Yolo when VocConverter.IsLayout(source) => SourceFormat.Voc,
        _ => null,
    };

    static void WriteReport(string file, SourceFormat from, string source, ConvertedDataset data, List<SplitSummary> splits)
    {
        var header = new List<string>
        {
            $"gfl data convert --from {from.ToString().ToLowerInvariant()} --to coco {source}",
            $"image root (data.*.img_prefix): {data.ImageRoot} (images are not copied)",
            $"categories: {string.Join(", ", data.Categories.Select(c => $"{c.Id} {c.Name}"))}",
        };
        foreach (var s in splits)
            header.Add($"{s.Split}: {s.Images} images ({s.ImagesWithoutBoxes} without boxes), {s.Boxes} boxes ({s.CrowdBoxes} iscrowd), " +
                       $"{s.Skipped} skipped, {s.Repaired} repaired -> {s.AnnotationFile}");
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(file))!);
        var temp = file + $".{Environment.ProcessId}.tmp";
        try
        {
            using (var w = new StreamWriter(temp, false, new System.Text.UTF8Encoding(false)) { NewLine = "\n" })
                data.Report.Write(w, header);
            File.Move(temp, file, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }
}
