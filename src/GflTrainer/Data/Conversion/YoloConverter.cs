using System.Globalization;

namespace GflTrainer.Data.Conversion;

/// <summary>YOLO txt labels (Ultralytics layout) -> <see cref="ConvertedDataset"/>: <c>SRC/images/&lt;split&gt;/*.jpg</c>
/// with <c>SRC/labels/&lt;split&gt;/*.txt</c> (the label of <c>images/train/a.jpg</c> is <c>labels/train/a.txt</c>, as
/// Ultralytics finds it), or flat <c>images/</c> + <c>labels/</c> as one split <c>all</c>. Image root: <c>SRC/images</c>,
/// file names <c>train/a.jpg</c>.
/// <para>Each label line is <c>class cx cy w h</c>, normalised to [0, 1] by the image size, which is read from the
/// image (EXIF orientation applied, as training decodes it). Category id = class index + 1. Ultralytics segment
/// lines (<c>class x1 y1 x2 y2 ...</c>, at least three points) become their polygon's bounding box. Boxes reaching
/// outside the image are clipped; lines that cannot be read are skipped with their <c>file:line</c>.</para></summary>
public static class YoloConverter
{
    static readonly HashSet<string> ImageExtensions = new([".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif"], StringComparer.OrdinalIgnoreCase);

    /// <summary>How far past [0, 1] a normalised coordinate may reach before its clipping is reported: labels
    /// written with 6 decimals of a box touching the border land up to 5e-7 outside.</summary>
    const double BorderTolerance = 1e-6;

    public static bool IsLayout(string source) =>
        Directory.Exists(Path.Combine(source, "images")) && Directory.Exists(Path.Combine(source, "labels"));

    /// <param name="classes">names by class index (<c>--classes FILE</c>); null: from data.yaml, classes.txt or obj.names.</param>
    public static ConvertedDataset Convert(string source, IReadOnlyList<string>? classes)
    {
        var imagesDir = Path.Combine(source, "images");
        var labelsDir = Path.Combine(source, "labels");
        if (!IsLayout(source))
        {
            var missing = string.Join(" and ", new[] { imagesDir, labelsDir }.Where(d => !Directory.Exists(d)).Select(Path.GetFileName));
            throw new GflConfigException($"{source} is not a YOLO folder: expected images/ and labels/ in it (Ultralytics layout " +
                                         $"images/<split>/*.jpg + labels/<split>/*.txt); no {missing}/ found") { Key = "SRC" };
        }
        var names = classes ?? YoloClassNames.Find(source)?.Names ?? throw new GflConfigException(
            $"{source}: no class names: expected data.yaml (names:), classes.txt or obj.names in it, or give --classes FILE") { Key = "--classes" };

        var report = new ConversionReport();
        var splits = new List<ConvertedSplit>();
        var imageStems = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (split, files) in FindSplits(imagesDir))
        {
            var images = new List<ConvertedImage>();
            foreach (var file in files)
            {
                var rel = Path.GetRelativePath(imagesDir, file).Replace('\\', '/');
                var stem = Path.ChangeExtension(rel, null);
                imageStems.Add(stem);
                var size = ImageSizeResult.Read(file);
                if (size.Error is not null)
                {
                    report.Add(split, ConversionIssueKind.UndecodableImage, "images/" + rel, size.Error + "; skipped with its labels");
                    continue;
                }
                var label = Path.Combine(labelsDir, stem + ".txt");
                var labelRel = "labels/" + stem + ".txt";
                var boxes = new List<ConvertedBox>();
                if (!File.Exists(label))
                    report.Add(split, ConversionIssueKind.MissingLabelFile, labelRel, $"no label file for images/{rel}; image kept without boxes");
                else
                    ReadLabels(label, labelRel, split, size.Width, size.Height, names, report, boxes);
                images.Add(new ConvertedImage(rel, size.Width, size.Height, boxes));
            }
            splits.Add(new ConvertedSplit(split, images));
        }
        if (splits.Count == 0)
            throw new GflConfigException($"{imagesDir}: no images (.jpg, .jpeg, .png, .bmp, .webp, .gif) in it or in its split folders") { Key = "SRC" };

        foreach (var label in Directory.EnumerateFiles(labelsDir, "*.txt", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            var stem = Path.ChangeExtension(Path.GetRelativePath(labelsDir, label).Replace('\\', '/'), null);
            if (imageStems.Contains(stem) || stem == "classes") continue;
            var split = stem.Contains('/') ? stem[..stem.IndexOf('/')] : "all";
            report.Add(split, ConversionIssueKind.LabelWithoutImage, $"labels/{stem}.txt", $"no image images/{stem}.* for this label file; skipped");
        }
        return new ConvertedDataset(imagesDir, ClassNames.ToCategories(names), splits, report);
    }

    /// <summary>Image files directly in images/ form split <c>all</c>; each sub-folder is a split (its files at any depth).</summary>
    static IEnumerable<(string Split, List<string> Files)> FindSplits(string imagesDir)
    {
        var flat = Directory.EnumerateFiles(imagesDir).Where(IsImage).Order(StringComparer.Ordinal).ToList();
        if (flat.Count > 0) yield return ("all", flat);
        foreach (var dir in Directory.EnumerateDirectories(imagesDir).Order(StringComparer.Ordinal))
        {
            var files = Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).Where(IsImage)
                .OrderBy(f => Path.GetRelativePath(imagesDir, f).Replace('\\', '/'), StringComparer.Ordinal).ToList();
            if (files.Count > 0) yield return (Path.GetFileName(dir), files);
        }
    }

    static bool IsImage(string f) => ImageExtensions.Contains(Path.GetExtension(f));

    static void ReadLabels(string label, string labelRel, string split, int w, int h, IReadOnlyList<string> names,
        ConversionReport report, List<ConvertedBox> boxes)
    {
        int lineNo = 0, lines = 0;
        foreach (var line in File.ReadLines(label))
        {
            lineNo++;
            var fields = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length == 0) continue;
            lines++;
            string where = $"{labelRel}:{lineNo}";
            bool segment = fields.Length >= 7 && fields.Length % 2 == 1;
            if (fields.Length != 5 && !segment)
            {
                report.Add(split, ConversionIssueKind.MalformedBox, where,
                    $"{fields.Length} fields; expected 'class cx cy w h' or a polygon 'class x1 y1 x2 y2 x3 y3 ...'; line skipped");
                continue;
            }
            if (!int.TryParse(fields[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out int cls) || cls < 0 || cls >= names.Count)
            {
                report.Add(split, ConversionIssueKind.MalformedBox, where,
                    $"class '{fields[0]}' is not an index 0..{names.Count - 1} ({names.Count} class names); line skipped");
                continue;
            }
            var v = new double[fields.Length - 1];
            int bad = -1;
            for (int k = 0; k < v.Length && bad < 0; k++)
                if (!double.TryParse(fields[k + 1], NumberStyles.Float, CultureInfo.InvariantCulture, out v[k]) || !double.IsFinite(v[k])) bad = k + 1;
            if (bad >= 0)
            {
                report.Add(split, ConversionIssueKind.MalformedBox, where, $"field {bad + 1} '{fields[bad]}' is not a finite number; line skipped");
                continue;
            }
            double x1, y1, x2, y2;
            if (segment)
            {
                var xs = v.Where((_, i) => i % 2 == 0).ToArray();
                var ys = v.Where((_, i) => i % 2 == 1).ToArray();
                (x1, x2, y1, y2) = (xs.Min(), xs.Max(), ys.Min(), ys.Max());
                report.Add(split, ConversionIssueKind.SegmentToBox, where, $"polygon of {xs.Length} points: converted to its bounding box");
            }
            else
            {
                if (v[2] <= 0 || v[3] <= 0)
                {
                    report.Add(split, ConversionIssueKind.DegenerateBox, where, $"width {fields[3]} or height {fields[4]} is not positive; line skipped");
                    continue;
                }
                (x1, y1, x2, y2) = (v[0] - v[2] / 2, v[1] - v[3] / 2, v[0] + v[2] / 2, v[1] + v[3] / 2);
            }
            double cx1 = Math.Clamp(x1, 0, 1), cy1 = Math.Clamp(y1, 0, 1), cx2 = Math.Clamp(x2, 0, 1), cy2 = Math.Clamp(y2, 0, 1);
            if (cx2 - cx1 <= 0 || cy2 - cy1 <= 0)
            {
                report.Add(split, ConversionIssueKind.DegenerateBox, where, "box has no area inside the image; line skipped");
                continue;
            }
            if (x1 < -BorderTolerance || y1 < -BorderTolerance || x2 > 1 + BorderTolerance || y2 > 1 + BorderTolerance)
                report.Add(split, ConversionIssueKind.BoxClipped, where,
                    $"box [{Num(x1)}, {Num(y1)}, {Num(x2)}, {Num(y2)}] (normalised corners) reaches outside [0, 1]; clipped");
            boxes.Add(new ConvertedBox(cls + 1, cx1 * w, cy1 * h, (cx2 - cx1) * w, (cy2 - cy1) * h, false));
        }
        if (lines == 0) report.Add(split, ConversionIssueKind.EmptyLabelFile, labelRel, "empty label file: image kept without boxes (a background image)");
    }

    static string Num(double v) => v.ToString("0.######", CultureInfo.InvariantCulture);
}
