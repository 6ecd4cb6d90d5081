using GflTrainer.Data.Statistics;
using System.Globalization;
using System.Text.Json;
using GflTrainer.Data;

namespace GflTrainer.Reporting;

/// <summary>Writes <see cref="DatasetStatistics"/> as <c>gfl data stats</c> shows it: an aligned text table (the
/// layout of <c>gfl data check</c>'s report), <c>stats.json</c> with every number and histogram, and per split the
/// PNGs <c>&lt;split&gt;_box_size</c>, <c>_aspect</c>, <c>_objects_per_image</c>, <c>_boxes_per_class</c> and
/// <c>_anchor_coverage</c>, all drawn by <see cref="Charts"/>.</summary>
public static class DatasetStatisticsReport
{
    static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
    };

    static string F(double v, string format = "0.##") => v.ToString(format, CultureInfo.InvariantCulture);

    static string Pct(long part, long whole) => whole == 0 ? "-" : F(100.0 * part / whole, "0.0");

    public static void Write(DatasetStatistics s, TextWriter w)
    {
        w.WriteLine($"resize: img_scale [{s.ImgScale[0]}, {s.ImgScale[1]}]{(s.KeepRatio ? " keep_ratio" : "")}, pad_divisor {s.PadDivisor}; " +
                    "box sizes are input pixels after this resize");
        if (s.MultiscaleIgnored) w.WriteLine("note: data.multiscale is set; training also draws other scales, these numbers are for img_scale");
        w.WriteLine($"anchors: {s.Head} head, strides {string.Join(" ", s.Strides)}, octave_base_scale {F(s.OctaveBaseScale)}, " +
                    $"scales_per_octave {s.ScalesPerOctave}, ratios {string.Join(" ", s.Ratios.Select(r => F(r)))}");
        foreach (var split in s.Splits)
        {
            w.WriteLine();
            WriteSplit(split, w);
        }
    }

    static void WriteSplit(SplitStatistics s, TextWriter w)
    {
        var r = s.Rules;
        w.WriteLine($"== {s.Split}: {s.AnnFile} ({s.View} view)");
        w.WriteLine(s.View == "training"
            ? $"{"images",-22} {s.Images,9}   in file {r.ImagesInFile}; dropped by training: {r.SkippedWithoutAnnotations} without annotations " +
              $"(filter_empty_gt), {r.SkippedSmallerThanMinSize} below min_size"
            : $"{"images",-22} {s.Images,9}   in file {r.ImagesInFile} (evaluation reads every image)");
        w.WriteLine($"{"images without boxes",-22} {s.ImagesWithoutBoxes,9}");
        w.WriteLine($"{"boxes",-22} {s.Boxes,9}   crowd (ignored) {s.CrowdBoxes}; dropped: {r.DroppedTinyBoxes} under 1 px, " +
                    $"{r.DroppedOutsideImage} outside the image, {r.DroppedUnknownCategory} unknown category, {r.DroppedNonFinite} non-finite");
        w.WriteLine($"{"objects per image",-22} {"",9}   mean {F(s.ObjectsPerImage.Mean)}, median {F(s.ObjectsPerImage.Median)}, max {F(s.ObjectsPerImage.Max)}");
        w.WriteLine($"{"resized image",-22} {"",9}   median {F(s.ResizedImageWidth.Median)} x {F(s.ResizedImageHeight.Median)}, " +
                    $"max {F(s.ResizedImageWidth.Max)} x {F(s.ResizedImageHeight.Max)}");
        w.WriteLine($"{"box sqrt(w*h)",-22} {"",9}   mean {F(s.Size.Mean, "0.0")}, median {F(s.Size.Median, "0.0")}, max {F(s.Size.Max, "0.0")}");
        w.WriteLine($"{"box width / height",-22} {"",9}   median {F(s.Width.Median, "0.0")} / {F(s.Height.Median, "0.0")}, " +
                    $"max {F(s.Width.Max, "0.0")} / {F(s.Height.Max, "0.0")}");
        w.WriteLine($"{"aspect w/h",-22} {"",9}   median {F(s.Aspect.Median)}, max {F(s.Aspect.Max)}");

        var c = s.Coverage;
        w.WriteLine();
        w.WriteLine($"{"class",-22} {"boxes",9} {"%",6} {"images",8} {"no positive",12} {"%",6}");
        w.WriteLine(new string('-', 68));
        for (int i = 0; i < s.Classes.Count; i++)
        {
            var k = s.Classes[i];
            var g = c.PerClass[i];
            w.WriteLine($"{Clip(k.Name, 22),-22} {k.Boxes,9} {Pct(k.Boxes, s.Boxes),6} {k.Images,8} {g.WithoutPositive,12} {Pct(g.WithoutPositive, g.Gts),6}");
        }
        w.WriteLine(new string('-', 68));
        w.WriteLine($"{"all",-22} {s.Boxes,9} {Pct(s.Boxes, s.Boxes),6} {s.Images,8} {c.WithoutPositive,12} {Pct(c.WithoutPositive, c.Gts),6}");

        w.WriteLine();
        w.WriteLine($"{"size sqrt(w*h)",-22} {"boxes",9} {"%",6} {"",8} {"no positive",12} {"%",6}");
        w.WriteLine(new string('-', 68));
        string[] ranges = [$"small (<{F(BoxSizes.SmallBelow)})", $"medium ({F(BoxSizes.SmallBelow)}-{F(BoxSizes.MediumBelow)})", $"large (>={F(BoxSizes.MediumBelow)})"];
        for (int i = 0; i < ranges.Length; i++)
        {
            var g = c.PerSize[i];
            w.WriteLine($"{ranges[i],-22} {s.SizeCounts[i],9} {Pct(s.SizeCounts[i], s.Boxes),6} {"",8} {g.WithoutPositive,12} {Pct(g.WithoutPositive, g.Gts),6}");
        }
        w.WriteLine();
        w.WriteLine($"anchor coverage, {c.Assigner}: {c.WithoutPositive} of {c.Gts} gts ({Pct(c.WithoutPositive, c.Gts)}%) get no positive anchor; " +
                    $"positives per gt mean {F(c.PositivesPerGtMean)}, median {F(c.PositivesPerGtMedian)}");
        w.WriteLine($"positives per image: median {F(c.PositivesPerImageMedian)}, p99 {c.PositivesPerImageP99}, max {c.PositivesPerImageMax}");
    }

    // Wide enough that the labels of many classes (COCO's 80) stay apart.
    static int BarsWidth(int bars) => Math.Max(Charts.Width, 200 + 16 * bars);

    static string Clip(string s, int n) => s.Length <= n ? s : s[..(n - 1)] + "~";

    /// <summary>Every number of <paramref name="s"/> as indented JSON (snake_case keys); the same statistics give the
    /// same bytes.</summary>
    public static string ToJson(DatasetStatistics s) => JsonSerializer.Serialize(s, Json) + "\n";

    /// <summary>Writes stats.json and the PNGs into <paramref name="dir"/>; returns the paths written.</summary>
    public static IReadOnlyList<string> Save(DatasetStatistics s, string dir)
    {
        Directory.CreateDirectory(dir);
        var json = Path.Combine(dir, "stats.json");
        var tmp = json + ".tmp";
        File.WriteAllText(tmp, ToJson(s));
        File.Move(tmp, json, overwrite: true);
        var written = new List<string> { json };
        foreach (var split in s.Splits) written.AddRange(Plots(split, dir));
        return written;
    }

    static IEnumerable<string> Plots(SplitStatistics s, string dir)
    {
        double[] Counts(BinCounts b) => b.Counts.Select(v => (double)v).ToArray();
        var size = Charts.Histogram($"{s.Split}: box size sqrt(w*h) after resize ({s.Boxes} boxes)", "input pixels",
            s.SizeHistogram.Edges, Counts(s.SizeHistogram), "boxes");
        Charts.MarkX(size, [(BoxSizes.SmallBelow, "32 (small | medium)"), (BoxSizes.MediumBelow, "96 (medium | large)")]);
        yield return Charts.Save(size, dir, $"{s.Split}_box_size.png");
        yield return Charts.Save(Charts.Histogram($"{s.Split}: box aspect ratio", "log2(w/h): 0 square, 1 twice as wide, -1 twice as tall",
            s.AspectLog2Histogram.Edges, Counts(s.AspectLog2Histogram), "boxes"), dir, $"{s.Split}_aspect.png");
        yield return Charts.Save(Charts.Histogram($"{s.Split}: objects per image ({s.Images} images)", "boxes in the image",
            s.ObjectsPerImageHistogram.Edges, Counts(s.ObjectsPerImageHistogram), "images"), dir, $"{s.Split}_objects_per_image.png");
        yield return Charts.Save(Charts.Bars($"{s.Split}: boxes per class", "boxes", s.Classes.Select(c => c.Name).ToArray(),
            s.Classes.Select(c => (double)c.Boxes).ToArray(), "0"), dir, $"{s.Split}_boxes_per_class.png", BarsWidth(s.Classes.Count));
        var c = s.Coverage;
        var groups = c.PerSize.Concat(c.PerClass).ToArray();
        var coverage = Charts.Bars(
            $"{s.Split}: gts without a positive anchor, {F(c.PercentWithoutPositive, "0.0")}% of {c.Gts} ({c.Assigner})",
            "% of the group's gts (size range, then class)", groups.Select(g => g.Name).ToArray(),
            groups.Select(g => g.PercentWithoutPositive).ToArray(), "0.0", colourByIndex: false);
        yield return Charts.Save(Charts.YFromZero(coverage, 1), dir, $"{s.Split}_anchor_coverage.png", BarsWidth(groups.Length));
    }
}
