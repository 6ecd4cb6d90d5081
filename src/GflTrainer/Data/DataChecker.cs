using GflTrainer.Coco;
namespace GflTrainer.Data;

/// <summary>Kinds of problems <see cref="DataChecker"/> reports, in report order.</summary>
public enum DataProblemKind
{
    MalformedJson,
    InvalidField,
    DuplicateImageId,
    DuplicateAnnotationId,
    DuplicateCategoryId,
    UnknownImage,
    UnknownCategory,
    NonFiniteBox,
    NegativeBox,
    TinyBox,
    BoxOutsideImage,
    UnsafeFileName,
    MissingFile,
    UndecodableImage,
    SizeMismatch,
}

/// <summary>One problem: where (file, image or annotation id) and what.</summary>
public sealed record DataProblem(DataProblemKind Kind, string Where, string Message);

/// <summary>Everything <c>gfl data check</c> found, plus counts for the summary.</summary>
public sealed record DataCheckReport(string AnnotationFile, string ImageRoot, int Images, int Annotations, int Categories,
    int ImagesWithoutAnnotations, int CrowdAnnotations, IReadOnlyList<DataProblem> Problems)
{
    public bool Clean => Problems.Count == 0;
}

/// <summary>Checks a COCO annotation file and its images without stopping at the first problem: JSON syntax (line and
/// byte), wrong-typed fields, duplicate ids, dangling image/category references, boxes that are non-finite, negative,
/// smaller than 1 px (dropped in training) or reaching outside the image, file names that are absolute or climb out
/// of the image root (refused, never opened), missing, truncated or undecodable files, and decoded sizes that differ
/// from the JSON's width/height (after EXIF orientation, which training applies too).</summary>
public static class DataChecker
{
    /// <summary>Tolerance in pixels for boxes reaching past the image border (float rounding in converters).</summary>
    const double BorderTolerance = 1.0;

    public static DataCheckReport Run(string annotationFile, string imageRoot, int workers = 2)
    {
        var problems = new List<DataProblem>();
        CocoAnnotations coco;
        try { coco = CocoAnnotations.Load(annotationFile); }
        catch (CocoFormatException e)
        {
            problems.Add(new(DataProblemKind.MalformedJson, annotationFile, e.Message));
            return new DataCheckReport(annotationFile, imageRoot, 0, 0, 0, 0, 0, problems);
        }
        foreach (var issue in coco.Issues) problems.Add(new(DataProblemKind.InvalidField, issue.Where, issue.Message));

        var images = new Dictionary<long, CocoImage>();
        foreach (var img in coco.Images)
            if (!images.TryAdd(img.Id, img))
                problems.Add(new(DataProblemKind.DuplicateImageId, $"image id {img.Id}", $"image id {img.Id} is used by '{images[img.Id].FileName}' and '{img.FileName}'"));
        var categories = new HashSet<long>();
        foreach (var c in coco.Categories)
            if (!categories.Add(c.Id)) problems.Add(new(DataProblemKind.DuplicateCategoryId, $"category id {c.Id}", $"category id {c.Id} appears twice"));

        var annIds = new HashSet<long>();
        var annotated = new HashSet<long>();
        int crowd = 0;
        foreach (var a in coco.Annotations)
        {
            string where = $"annotation id {a.Id}";
            if (!annIds.Add(a.Id)) problems.Add(new(DataProblemKind.DuplicateAnnotationId, where, $"annotation id {a.Id} appears twice"));
            if (a.IsCrowd == true) crowd++;
            annotated.Add(a.ImageId);
            if (!categories.Contains(a.CategoryId)) problems.Add(new(DataProblemKind.UnknownCategory, where, $"category_id {a.CategoryId} is not in categories"));
            if (!images.TryGetValue(a.ImageId, out var img))
            {
                problems.Add(new(DataProblemKind.UnknownImage, where, $"image_id {a.ImageId} is not in images"));
                continue;
            }
            if (a.Bbox is not { } b) continue;   // already an InvalidField problem
            if (b.Any(v => !double.IsFinite(v))) { problems.Add(new(DataProblemKind.NonFiniteBox, where, $"bbox [{string.Join(", ", b)}] is not finite")); continue; }
            if (b[2] < 0 || b[3] < 0 || b[0] < -BorderTolerance || b[1] < -BorderTolerance)
                problems.Add(new(DataProblemKind.NegativeBox, where, $"bbox [{Fmt(b)}] has a negative coordinate or size"));
            else if (b[2] < 1 || b[3] < 1)
                problems.Add(new(DataProblemKind.TinyBox, where, $"bbox [{Fmt(b)}] is under 1 px wide or high (dropped in training)"));
            if (img.Width > 0 && img.Height > 0 && (b[0] + b[2] > img.Width + BorderTolerance || b[1] + b[3] > img.Height + BorderTolerance))
                problems.Add(new(DataProblemKind.BoxOutsideImage, where, $"bbox [{Fmt(b)}] reaches outside the {img.Width}x{img.Height} image {img.FileName}"));
        }

        var fileProblems = new DataProblem?[coco.Images.Count];
        Parallel.For(0, coco.Images.Count, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, workers) },
            i => fileProblems[i] = CheckImageFile(coco.Images[i], imageRoot));
        problems.AddRange(fileProblems.OfType<DataProblem>());

        int withoutAnn = coco.Images.Count(i => !annotated.Contains(i.Id));
        var ordered = problems.OrderBy(p => p.Kind).ToList();   // stable: file order within a kind
        return new DataCheckReport(annotationFile, imageRoot, coco.Images.Count, coco.Annotations.Count, coco.Categories.Count,
            withoutAnn, crowd, ordered);
    }

    static DataProblem? CheckImageFile(CocoImage img, string root)
    {
        string where = $"image id {img.Id}";
        if (img.FileName.Length == 0) return null;   // no file_name: already an InvalidField problem
        var path = CocoDataset.ResolveImagePath(root, img.FileName);
        if (path is null)
            return new(DataProblemKind.UnsafeFileName, where, $"file_name '{img.FileName}' is absolute or leaves the image root (refused)");
        if (!File.Exists(path)) return new(DataProblemKind.MissingFile, where, $"{path} does not exist");
        RgbImage decoded;
        try { decoded = ImageDecoder.Decode(path); }
        catch (ImageDecodeException e) { return new(DataProblemKind.UndecodableImage, where, e.Message); }
        if (decoded.Width != img.Width || decoded.Height != img.Height)
            return new(DataProblemKind.SizeMismatch, where,
                $"{img.FileName} decodes to {decoded.Width}x{decoded.Height} (EXIF orientation applied) but the JSON says {img.Width}x{img.Height}");
        return null;
    }

    static string Fmt(double[] b) => string.Join(", ", b.Select(v => v.ToString("0.##", System.Globalization.CultureInfo.InvariantCulture)));

    /// <summary>Human report: counts, a per-kind summary table, then up to <paramref name="examplesPerKind"/> examples per kind.</summary>
    public static void Write(DataCheckReport r, TextWriter w, int examplesPerKind = 10)
    {
        w.WriteLine($"annotations: {r.AnnotationFile}");
        w.WriteLine($"images root: {r.ImageRoot}");
        w.WriteLine($"{r.Images} images, {r.Annotations} annotations ({r.CrowdAnnotations} crowd), {r.Categories} categories, " +
                    $"{r.ImagesWithoutAnnotations} images without annotations");
        if (r.Clean) { w.WriteLine("no problems found"); return; }
        w.WriteLine();
        w.WriteLine($"{"problem",-24} {"count",7}");
        w.WriteLine(new string('-', 32));
        foreach (var g in r.Problems.GroupBy(p => p.Kind))
            w.WriteLine($"{g.Key,-24} {g.Count(),7}");
        w.WriteLine(new string('-', 32));
        w.WriteLine($"{"total",-24} {r.Problems.Count,7}");
        foreach (var g in r.Problems.GroupBy(p => p.Kind))
        {
            w.WriteLine();
            w.WriteLine($"{g.Key}:");
            foreach (var p in g.Take(examplesPerKind)) w.WriteLine($"  {p.Where}: {p.Message}");
            if (g.Count() > examplesPerKind) w.WriteLine($"  ... and {g.Count() - examplesPerKind} more");
        }
    }
}
