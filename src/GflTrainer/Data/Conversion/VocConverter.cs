using System.Globalization;
using System.Xml;
using System.Xml.Linq;

namespace GflTrainer.Data.Conversion;

/// <summary>Pascal VOC (mmdetection's <c>VOCDataset</c> layout) -> <see cref="ConvertedDataset"/>:
/// <c>SRC/Annotations/*.xml</c>, <c>SRC/JPEGImages/</c>, splits from <c>SRC/ImageSets/Main/{train,val,trainval,test}.txt</c>
/// (one split <c>all</c> of every XML when there are none). A VOCdevkit folder holding <c>VOC2007/</c>, <c>VOC2012/</c>
/// is one set whose splits join the years (file names <c>VOC2007/JPEGImages/...</c> under the devkit folder), as
/// mmdetection's VOC configs concatenate 2007 and 2012 trainval.
/// <para>Boxes follow mmdetection's <c>tools/dataset_converters/pascal_voc.py</c>, the converter its COCO-format
/// VOC configs train on: all four corners minus 1 (VOC counts pixels from 1), then x = xmin-1, y = ymin-1,
/// w = xmax-xmin, h = ymax-ymin. Fractional coordinates (some labelling tools write them) are kept, not truncated.
/// <c>difficult</c> objects become <c>iscrowd: 1</c> (mmdetection's ignore boxes: neither trained on nor
/// counted in evaluation); <c>truncated</c> ones stay plain boxes. Image sizes come from the image files, not
/// from <c>&lt;size&gt;</c>. Category ids are 1..N (pascal_voc.py writes 0..19; training maps ids to labels in id
/// order, so only the numbers in the file differ, not the labels).</para></summary>
public static class VocConverter
{
    static readonly string[] SplitNames = ["train", "val", "trainval", "test"];
    static readonly string[] ImageExtensions = [".jpg", ".jpeg", ".png", ".bmp", ".webp", ".JPG", ".JPEG", ".PNG"];

    /// <summary>One VOC year folder: where it is, and the prefix its file names get under the image root.</summary>
    sealed record Root(string Dir, string FilePrefix);

    sealed record VocObject(string Name, double XMin, double YMin, double XMax, double YMax, bool Difficult, bool Truncated, string Source);

    /// <summary>A parsed XML file: its objects and the problems found in it, or only the problem that stopped it.</summary>
    sealed record VocFile(string? FileName, int? Width, int? Height, IReadOnlyList<VocObject> Objects,
        IReadOnlyList<(ConversionIssueKind Kind, string Source, string Message)> Issues, bool Usable);

    /// <summary>Whether <paramref name="source"/> looks like a VOC folder or VOCdevkit.</summary>
    public static bool IsLayout(string source) => FindRoots(source).Count > 0;

    /// <param name="classes">fixes order and ids (1..N); null: the 20 VOC classes when every name found is one of
    /// them, otherwise the names found, sorted.</param>
    public static ConvertedDataset Convert(string source, IReadOnlyList<string>? classes)
    {
        var roots = FindRoots(source);
        if (roots.Count == 0)
            throw new GflConfigException($"{source} is not a Pascal VOC folder: expected Annotations/*.xml and JPEGImages/ in it " +
                                         "(or a VOCdevkit folder holding VOC2007/, VOC2012/ ... with those)") { Key = "SRC" };
        foreach (var r in roots)
            if (!Directory.Exists(Path.Combine(r.Dir, "JPEGImages")))
                throw new GflConfigException($"{r.Dir}: has Annotations/ but no JPEGImages/ folder") { Key = "SRC" };
        string imageRoot = roots.Count == 1 && roots[0].FilePrefix.Length == 0 ? Path.Combine(source, "JPEGImages") : source;

        // Items per split: (root, image id, where the id came from).
        var splits = new List<(string Name, List<(Root Root, string Id, string Source)> Items)>();
        foreach (var name in SplitNames.Append("all"))
        {
            var items = new List<(Root, string, string)>();
            foreach (var r in roots)
            {
                if (name == "all")
                {
                    if (HasSplitFiles(r)) continue;
                    foreach (var xml in Directory.EnumerateFiles(Path.Combine(r.Dir, "Annotations"), "*.xml").Order(StringComparer.Ordinal))
                        items.Add((r, Path.GetFileNameWithoutExtension(xml), Rel(source, xml)));
                    continue;
                }
                var list = Path.Combine(r.Dir, "ImageSets", "Main", name + ".txt");
                if (!File.Exists(list)) continue;
                int lineNo = 0;
                foreach (var line in File.ReadLines(list))
                {
                    lineNo++;
                    var id = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).FirstOrDefault();
                    if (id is not null) items.Add((r, id, $"{Rel(source, list)}:{lineNo}"));
                }
            }
            if (items.Count > 0 || roots.Any(r => File.Exists(Path.Combine(r.Dir, "ImageSets", "Main", name + ".txt"))))
                splits.Add((name, items));
        }

        // Parse every XML once (train and trainval share most files), then settle the classes from all of them.
        var parsed = new Dictionary<string, VocFile>(StringComparer.Ordinal);
        foreach (var (_, items) in splits)
            foreach (var (r, id, _) in items)
            {
                var xml = Path.Combine(r.Dir, "Annotations", id + ".xml");
                if (!parsed.ContainsKey(xml) && File.Exists(xml)) parsed[xml] = Parse(xml, Rel(source, xml));
            }
        var names = classes ?? ChooseClasses(parsed.Values.SelectMany(f => f.Objects).Select(o => o.Name));
        var categories = ClassNames.ToCategories(names);
        var idOfName = categories.ToDictionary(c => c.Name, c => c.Id, StringComparer.Ordinal);

        var report = new ConversionReport();
        var sizes = new Dictionary<string, ImageSizeResult>(StringComparer.Ordinal);
        var outSplits = new List<ConvertedSplit>();
        foreach (var (name, items) in splits)
        {
            var images = new List<ConvertedImage>();
            foreach (var (r, id, from) in items)
            {
                var xml = Path.Combine(r.Dir, "Annotations", id + ".xml");
                if (!parsed.TryGetValue(xml, out var file))
                {
                    report.Add(name, ConversionIssueKind.MissingAnnotation, from, $"image id '{id}' has no {Rel(source, xml)}; image skipped");
                    continue;
                }
                foreach (var (kind, src, msg) in file.Issues) report.Add(name, kind, src, msg);
                if (!file.Usable) continue;
                var xmlRel = Rel(source, xml);
                var image = FindImage(r, id, file.FileName);
                if (image is null)
                {
                    report.Add(name, ConversionIssueKind.MissingImage, xmlRel,
                        $"no image {id}.jpg (or {file.FileName ?? ".jpeg/.png"}) in {Rel(source, Path.Combine(r.Dir, "JPEGImages"))}; skipped with its boxes");
                    continue;
                }
                if (!sizes.TryGetValue(image, out var size)) sizes[image] = size = ImageSizeResult.Read(image);
                if (size.Error is not null)
                {
                    report.Add(name, ConversionIssueKind.UndecodableImage, Rel(source, image), size.Error + "; skipped with its boxes");
                    continue;
                }
                int w = size.Width, h = size.Height;
                if (file.Width is > 0 && file.Height is > 0 && (file.Width != w || file.Height != h))
                    report.Add(name, ConversionIssueKind.SizeMismatch, xmlRel,
                        $"<size> says {file.Width}x{file.Height}, the image is {w}x{h} (EXIF orientation applied); the image's size is used");
                var boxes = new List<ConvertedBox>();
                foreach (var o in file.Objects)
                {
                    if (!idOfName.TryGetValue(o.Name, out long cat))
                    {
                        report.Add(name, ConversionIssueKind.UnknownClass, o.Source, $"class '{o.Name}' is not in --classes; box skipped");
                        continue;
                    }
                    var box = ToBox(o, w, h, cat, name, report);
                    if (box is null) continue;
                    if (o.Difficult) report.Add(name, ConversionIssueKind.Difficult, o.Source, "difficult: written with iscrowd 1 (ignored in training and evaluation)");
                    if (o.Truncated) report.Add(name, ConversionIssueKind.Truncated, o.Source, "truncated: kept as a plain box");
                    boxes.Add(box);
                }
                images.Add(new ConvertedImage(r.FilePrefix + Path.GetRelativePath(Path.Combine(r.Dir, "JPEGImages"), image).Replace('\\', '/'), w, h, boxes));
            }
            outSplits.Add(new ConvertedSplit(name, images));
        }
        return new ConvertedDataset(imageRoot, categories, outSplits, report);
    }

    /// <summary>mmdetection's pascal_voc.py convention (see the class summary), then clipped to the image.</summary>
    static ConvertedBox? ToBox(VocObject o, int w, int h, long cat, string split, ConversionReport report)
    {
        double x1 = o.XMin - 1, y1 = o.YMin - 1, x2 = o.XMax - 1, y2 = o.YMax - 1;
        string corners = $"[xmin {Num(o.XMin)}, ymin {Num(o.YMin)}, xmax {Num(o.XMax)}, ymax {Num(o.YMax)}]";
        double cx1 = Math.Clamp(x1, 0, w), cy1 = Math.Clamp(y1, 0, h), cx2 = Math.Clamp(x2, 0, w), cy2 = Math.Clamp(y2, 0, h);
        if (cx2 - cx1 <= 0 || cy2 - cy1 <= 0)
        {
            report.Add(split, ConversionIssueKind.DegenerateBox, o.Source, $"{corners} has no area inside the {w}x{h} image; box skipped");
            return null;
        }
        if (cx1 != x1 || cy1 != y1 || cx2 != x2 || cy2 != y2)
            report.Add(split, ConversionIssueKind.BoxClipped, o.Source,
                $"{corners} reaches outside the {w}x{h} image; clipped to [x {Num(cx1)}, y {Num(cy1)}, w {Num(cx2 - cx1)}, h {Num(cy2 - cy1)}]");
        return new ConvertedBox(cat, cx1, cy1, cx2 - cx1, cy2 - cy1, o.Difficult);
    }

    static IReadOnlyList<string> ChooseClasses(IEnumerable<string> found)
    {
        var set = found.ToHashSet(StringComparer.Ordinal);
        if (set.All(ClassNames.Voc.Contains)) return ClassNames.Voc;
        return set.Order(StringComparer.Ordinal).ToList();
    }

    static List<Root> FindRoots(string source)
    {
        if (!Directory.Exists(source)) return [];
        if (Directory.Exists(Path.Combine(source, "Annotations"))) return [new Root(source, "")];
        return Directory.EnumerateDirectories(source).Order(StringComparer.Ordinal)
            .Where(d => Directory.Exists(Path.Combine(d, "Annotations")))
            .Select(d => new Root(d, Path.GetFileName(d) + "/JPEGImages/")).ToList();
    }

    static bool HasSplitFiles(Root r) =>
        SplitNames.Any(s => File.Exists(Path.Combine(r.Dir, "ImageSets", "Main", s + ".txt")));

    /// <summary>The XML's <c>&lt;filename&gt;</c> when that file exists, else <c>ID.jpg</c> and the other usual
    /// extensions (mmdetection assumes <c>ID.jpg</c>).</summary>
    static string? FindImage(Root r, string id, string? xmlFileName)
    {
        var dir = Path.Combine(r.Dir, "JPEGImages");
        if (xmlFileName is { Length: > 0 } f && Path.GetFileName(f) == f && File.Exists(Path.Combine(dir, f))) return Path.Combine(dir, f);
        foreach (var ext in ImageExtensions)
            if (File.Exists(Path.Combine(dir, id + ext))) return Path.Combine(dir, id + ext);
        return null;
    }

    static VocFile Parse(string path, string rel)
    {
        XDocument doc;
        try
        {
            var settings = new XmlReaderSettings { DtdProcessing = DtdProcessing.Prohibit, XmlResolver = null };
            using var reader = XmlReader.Create(path, settings);
            doc = XDocument.Load(reader, LoadOptions.SetLineInfo);
        }
        catch (XmlException e)
        {
            return Unusable(ConversionIssueKind.MalformedFile, $"{rel}:{e.LineNumber}", $"malformed XML ({Reason(e)}); file skipped");
        }
        catch (IOException e)
        {
            return Unusable(ConversionIssueKind.MalformedFile, rel, $"cannot read ({e.Message}); file skipped");
        }
        var root = doc.Root!;
        if (root.Name.LocalName != "annotation")
            return Unusable(ConversionIssueKind.MalformedFile, $"{rel}:{Line(root)}", $"root element is <{root.Name.LocalName}>, expected <annotation>; file skipped");

        var issues = new List<(ConversionIssueKind, string, string)>();
        var objects = new List<VocObject>();
        foreach (var obj in root.Elements("object"))
        {
            string where = $"{rel}:{Line(obj)}";
            var name = obj.Element("name")?.Value.Trim();
            var bnd = obj.Element("bndbox");
            if (string.IsNullOrEmpty(name) || bnd is null)
            {
                issues.Add((ConversionIssueKind.MalformedBox, where, $"<object> without {(string.IsNullOrEmpty(name) ? "<name>" : "<bndbox>")}; box skipped"));
                continue;
            }
            var coords = new double[4];
            string? bad = null;
            string[] tags = ["xmin", "ymin", "xmax", "ymax"];
            for (int k = 0; k < 4; k++)
            {
                var text = bnd.Element(tags[k])?.Value.Trim();
                if (text is null || !double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out coords[k]) || !double.IsFinite(coords[k]))
                {
                    bad = text is null ? $"<bndbox> has no <{tags[k]}>" : $"<{tags[k]}> '{text}' is not a number";
                    break;
                }
            }
            if (bad is not null) { issues.Add((ConversionIssueKind.MalformedBox, where, $"{bad}; box skipped")); continue; }
            objects.Add(new VocObject(name, coords[0], coords[1], coords[2], coords[3], Flag(obj, "difficult"), Flag(obj, "truncated"), where));
        }
        var size = root.Element("size");
        return new VocFile(root.Element("filename")?.Value.Trim(), Int(size?.Element("width")), Int(size?.Element("height")), objects, issues, true);
    }

    static VocFile Unusable(ConversionIssueKind kind, string where, string message) => new(null, null, null, [], [(kind, where, message)], false);

    /// <summary>The parser's message without its own "Line n, position m." tail (the source already names the line).</summary>
    static string Reason(XmlException e)
    {
        var m = e.Message;
        int at = m.IndexOf(" Line ", StringComparison.Ordinal);
        return (at > 0 ? m[..at] : m).TrimEnd('.', ' ') + $", column {e.LinePosition}";
    }

    static bool Flag(XElement obj, string tag) =>
        int.TryParse(obj.Element(tag)?.Value.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) && v != 0;

    static int? Int(XElement? e) =>
        double.TryParse(e?.Value.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double v) ? (int)v : null;

    static int Line(XElement e) => ((IXmlLineInfo)e).LineNumber;

    static string Num(double v) => v.ToString("0.###", CultureInfo.InvariantCulture);

    internal static string Rel(string source, string path) => Path.GetRelativePath(source, path).Replace('\\', '/');
}
