namespace GflTrainer.Coco;

/// <summary>One detection in COCO results form: box <c>[x, y, w, h]</c> in absolute pixels, top-left origin.</summary>
public readonly record struct CocoDetection(long ImageId, long CategoryId, double X, double Y, double Width, double Height, double Score)
{
    /// <summary>w*h, as pycocotools' <c>loadRes</c> sets it (negative for a negative width: then it lies outside
    /// every area range, and the detection is ignored unless it matches).</summary>
    public double Area => Width * Height;
}

/// <summary>A results set checked against its ground truth, as pycocotools' <c>COCO.loadRes</c> builds it:
/// every image id must be one the ground truth lists; detections are numbered 1..N in the given order
/// (that order breaks score ties); category ids the ground truth does not list are kept but never evaluated.</summary>
public sealed class CocoDetections
{
    /// <summary>The detections in file order.</summary>
    public IReadOnlyList<CocoDetection> Items { get; }

    /// <summary>Things pycocotools accepts silently or rejects where we go on (unknown categories, an empty set).</summary>
    public IReadOnlyList<string> Warnings { get; }

    /// <summary><see cref="Items"/> as an array, for the evaluation loops.</summary>
    internal CocoDetection[] ItemArray { get; }

    CocoDetections(CocoDetection[] items, IReadOnlyList<string> warnings)
    {
        ItemArray = items;
        Items = items;
        Warnings = warnings;
    }

    /// <summary>Validates in-memory detections (e.g. a model's output) against <paramref name="groundTruth"/>.</summary>
    /// <param name="source">Names the detections in messages (a file path, or "model output").</param>
    /// <exception cref="CocoFormatException">A detection's image id is not in the ground truth.</exception>
    public static CocoDetections Create(CocoGroundTruth groundTruth, IReadOnlyList<CocoDetection> detections, string source = "detections")
    {
        ArgumentNullException.ThrowIfNull(groundTruth);
        ArgumentNullException.ThrowIfNull(detections);
        var warnings = new List<string>();
        if (detections.Count == 0)
        {
            // pycocotools' loadRes fails with IndexError on [] (it inspects element 0 to guess the result
            // type). A model that finds nothing is a legitimate (bad) result, so we score it instead: every
            // category with ground truth gets precision and recall 0, which is what COCOeval computes for a
            // result set without annotations.
            warnings.Add($"{source}: no detections; every category with ground truth scores 0 " +
                "(pycocotools rejects an empty results list)");
            return new CocoDetections(Array.Empty<CocoDetection>(), warnings);
        }

        var categoryIds = groundTruth.Categories.Select(c => c.Id).ToHashSet();
        long unknownImages = 0, unknownCategories = 0, firstUnknownImage = 0, firstUnknownCategory = 0;
        foreach (var d in detections)
        {
            if (!groundTruth.ImageIdSet.Contains(d.ImageId) && unknownImages++ == 0) firstUnknownImage = d.ImageId;
            if (!categoryIds.Contains(d.CategoryId) && unknownCategories++ == 0) firstUnknownCategory = d.CategoryId;
        }
        if (unknownImages > 0)
            throw new CocoFormatException(source, $"{Detections(unknownImages)} on images that {groundTruth.Source} " +
                $"does not list (first: image_id {firstUnknownImage}); the results do not belong to this annotation file");
        if (unknownCategories > 0)
            warnings.Add($"{source}: {Detections(unknownCategories)} with a category id that {groundTruth.Source} does " +
                $"not list (first: {firstUnknownCategory}); ignored, as pycocotools does");
        return new CocoDetections(detections.ToArray(), warnings);
    }

    static string Detections(long count) => count == 1 ? "1 detection" : $"{count} detections";

    /// <summary>Reads a COCO results file (a JSON array of <c>{image_id, category_id, bbox, score}</c>) and
    /// validates it with <see cref="Create"/>.</summary>
    /// <exception cref="CocoFormatException">Missing file, malformed JSON, a missing field, or an unknown image id.</exception>
    public static CocoDetections Load(string path, CocoGroundTruth groundTruth)
    {
        var dtos = CocoJsonFile.Read(path, CocoJsonContext.Default.ListCocoResultDto,
            "a JSON array of detections [{\"image_id\", \"category_id\", \"bbox\", \"score\"}] (COCO results format)");
        var items = new CocoDetection[dtos.Count];
        for (int i = 0; i < items.Length; i++)
        {
            var d = dtos[i] ?? throw new CocoFormatException(path, $"detection [{i}] is null");
            string Missing(string field) =>
                $"detection [{i}]{(d.ImageId is long img ? $" (image_id {img})" : "")} has no \"{field}\"";
            var box = d.Bbox ?? throw new CocoFormatException(path, Missing("bbox") + " (only bbox results can be evaluated)");
            if (box.Length != 4)
                throw new CocoFormatException(path, $"detection [{i}]: bbox must be [x, y, w, h], found {box.Length} numbers");
            items[i] = new CocoDetection(
                d.ImageId ?? throw new CocoFormatException(path, Missing("image_id")),
                d.CategoryId ?? throw new CocoFormatException(path, Missing("category_id")),
                box[0], box[1], box[2], box[3],
                d.Score ?? throw new CocoFormatException(path, Missing("score")));
        }
        return Create(groundTruth, items, path);
    }
}
