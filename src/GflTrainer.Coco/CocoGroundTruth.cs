namespace GflTrainer.Coco;

/// <summary>One ground-truth annotation as the bbox evaluation sees it.</summary>
/// <param name="Area">The file's <c>area</c> field (the segmentation area in real COCO, not w*h): pycocotools
/// uses it for the small/medium/large ranges.</param>
/// <param name="IsCrowd">Crowd regions are never missed and absorb any number of detections.</param>
public readonly record struct CocoGroundTruthBox(
    long Id, long ImageId, long CategoryId, double X, double Y, double Width, double Height, double Area, bool IsCrowd);

/// <summary>A COCO instances file reduced to what bbox evaluation needs: the evaluated images (every listed
/// image, with or without annotations), the categories and the annotations, as pycocotools' <c>COCO</c> holds them.</summary>
public sealed class CocoGroundTruth
{
    /// <summary>Image ids in ascending order: the evaluated set, and the order accumulation concatenates in.</summary>
    public IReadOnlyList<long> ImageIds { get; }

    /// <summary>Categories by ascending id (pycocotools sorts <c>catIds</c>).</summary>
    public IReadOnlyList<CocoCategory> Categories { get; }

    /// <summary>Annotations in file order.</summary>
    public IReadOnlyList<CocoGroundTruthBox> Annotations { get; }

    /// <summary>Things that make the result differ from what the user probably expects (annotation id 0,
    /// duplicate ids); pycocotools is silent about them.</summary>
    public IReadOnlyList<string> Warnings { get; }

    /// <summary>Where the data came from, for messages.</summary>
    public string Source { get; }

    internal HashSet<long> ImageIdSet { get; }

    /// <summary><see cref="Annotations"/> as an array, for the evaluation loops.</summary>
    internal CocoGroundTruthBox[] AnnotationArray { get; }

    /// <summary>Builds the ground truth from records; <paramref name="source"/> names it in messages.</summary>
    public CocoGroundTruth(IEnumerable<long> imageIds, IEnumerable<CocoCategory> categories,
        IReadOnlyList<CocoGroundTruthBox> annotations, string source = "ground truth")
    {
        ArgumentNullException.ThrowIfNull(annotations);
        Source = source;
        ImageIdSet = new HashSet<long>(imageIds);
        ImageIds = ImageIdSet.Order().ToArray();
        // COCO() indexes categories by id, so a repeated id keeps the last entry.
        var byId = new Dictionary<long, CocoCategory>();
        foreach (var c in categories) byId[c.Id] = c;
        Categories = byId.Values.OrderBy(c => c.Id).ToArray();
        AnnotationArray = annotations.ToArray();
        Annotations = AnnotationArray;
        Warnings = FindSurprises(annotations, source);
    }

    /// <summary>Reads a COCO instances JSON file (<c>images</c>, <c>categories</c>, <c>annotations</c> with
    /// <c>id, image_id, category_id, bbox, area, iscrowd</c>) with the one COCO reader, <see cref="CocoAnnotations"/>.</summary>
    /// <exception cref="CocoFormatException">The file is missing, not valid JSON, or lacks a required field.</exception>
    public static CocoGroundTruth Load(string path) => FromAnnotations(CocoAnnotations.Load(path));

    /// <summary>Fields evaluation does not read: an image without a file name is evaluated as pycocotools does.</summary>
    static readonly HashSet<string> NotEvaluated = ["file_name", "width", "height", "name"];

    /// <summary>The ground truth of an already parsed file (training parses its validation file once, for the loader
    /// and for this). As strict as pycocotools where it would fail: every annotation needs a bbox of 4 numbers,
    /// <c>area</c> and <c>iscrowd</c>.</summary>
    public static CocoGroundTruth FromAnnotations(CocoAnnotations coco)
    {
        string path = coco.SourceFile;
        if (coco.Issues.FirstOrDefault(i => !NotEvaluated.Contains(i.Field)) is { } issue)
            throw new CocoFormatException(path, $"{issue.Where}: {issue.Message}");
        var annotations = new CocoGroundTruthBox[coco.Annotations.Count];
        for (int i = 0; i < annotations.Length; i++)
        {
            var a = coco.Annotations[i];
            string Missing(string field) => $"annotations[{i}] (id {a.Id}) has no \"{field}\"";
            var box = a.Bbox ?? throw new CocoFormatException(path, $"annotations[{i}] (id {a.Id}): bbox must be [x, y, w, h]");
            // pycocotools reads area and iscrowd for every annotation and fails with KeyError without them;
            // guessing area = w*h would silently move boxes between the small/medium/large ranges.
            annotations[i] = new CocoGroundTruthBox(a.Id, a.ImageId, a.CategoryId, box[0], box[1], box[2], box[3],
                a.Area ?? throw new CocoFormatException(path, Missing("area")),
                a.IsCrowd ?? throw new CocoFormatException(path, Missing("iscrowd")));
        }
        return new CocoGroundTruth(coco.Images.Select(im => im.Id), coco.Categories, annotations, path);
    }

    static string[] FindSurprises(IReadOnlyList<CocoGroundTruthBox> annotations, string source)
    {
        var warnings = new List<string>();
        var seen = new HashSet<long>();
        long duplicates = 0, firstDuplicate = 0;
        bool idZero = false;
        foreach (var a in annotations)
        {
            if (a.Id == 0) idZero = true;
            if (!seen.Add(a.Id) && duplicates++ == 0) firstDuplicate = a.Id;
        }
        if (idZero)
            warnings.Add($"{source}: an annotation has id 0; pycocotools stores a match as the matched annotation's id " +
                "and reads 0 as 'unmatched', so a detection of that object counts as a false positive and the object as " +
                "missed. The results reproduce pycocotools; number annotations from 1 to avoid it.");
        if (duplicates > 0)
            warnings.Add($"{source}: {duplicates} annotations repeat an earlier id (first: {firstDuplicate}); as in " +
                "pycocotools the last annotation with an id replaces the earlier ones.");
        return warnings.ToArray();
    }
}
