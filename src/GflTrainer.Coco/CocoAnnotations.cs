using System.Text.Json;

namespace GflTrainer.Coco;

/// <summary>One <c>images[]</c> entry of a COCO instances file. An entry without <c>file_name</c>, <c>width</c> or
/// <c>height</c> is kept (evaluation needs only the id) with "" or 0, and reported in <see cref="CocoAnnotations.Issues"/>.</summary>
public sealed record CocoImage(long Id, string FileName, int Width, int Height);

/// <summary>One <c>annotations[]</c> entry. <see cref="Bbox"/> is COCO [x, y, w, h] in pixels, or null when the
/// entry has no usable bbox array (reported by <c>gfl data check</c>). <see cref="Area"/> and <see cref="IsCrowd"/> are
/// null when the entry lacks them: training reads a missing iscrowd as 0 (mmdetection), evaluation refuses both
/// missing (pycocotools fails with KeyError). Segmentation is not read (GFL is box-only).</summary>
public sealed record CocoAnnotation(long Id, long ImageId, long CategoryId, double[]? Bbox, double? Area, bool? IsCrowd);

/// <summary>One <c>categories[]</c> entry.</summary>
public sealed record CocoCategory(long Id, string Name);

/// <summary>A field whose JSON type was wrong or that was missing: kept, not thrown, so the checker can list them all.</summary>
/// <param name="Field">the JSON field at fault (<c>id</c>, <c>file_name</c>, <c>bbox</c>...).</param>
public sealed record CocoFieldIssue(string Where, string Message, string Field);

/// <summary>The parts of a COCO instances JSON file that detection needs, read by streaming
/// (<see cref="JsonTokenStream"/>): memory is the records, not the file.</summary>
public sealed class CocoAnnotations
{
    public required string SourceFile { get; init; }
    public required IReadOnlyList<CocoImage> Images { get; init; }
    public required IReadOnlyList<CocoAnnotation> Annotations { get; init; }
    public required IReadOnlyList<CocoCategory> Categories { get; init; }
    public required IReadOnlyList<CocoFieldIssue> Issues { get; init; }
    /// <summary>SHA-256 of the file's bytes (lower-case hex), computed while parsing: what identifies a training set
    /// when it moves, without a second read of a file that can be hundreds of MB.</summary>
    public required string Sha256 { get; init; }

    /// <summary>Reads <paramref name="file"/>. Throws <see cref="CocoFormatException"/> naming the file, line and
    /// byte for malformed JSON or a missing top-level array; wrong-typed fields end up in <see cref="Issues"/>.</summary>
    public static CocoAnnotations Load(string file)
    {
        if (!File.Exists(file)) throw new CocoFormatException(file, "annotation file not found");
        var fs = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
        using var sha = System.Security.Cryptography.SHA256.Create();
        var hashed = new System.Security.Cryptography.CryptoStream(fs, sha, System.Security.Cryptography.CryptoStreamMode.Read);
        using var json = new JsonTokenStream(hashed, file);
        var images = new List<CocoImage>();
        var anns = new List<CocoAnnotation>();
        var cats = new List<CocoCategory>();
        var issues = new List<CocoFieldIssue>();
        bool sawImages = false, sawAnns = false, sawCats = false;

        if (!json.Read() || json.TokenType != JsonTokenType.StartObject)
            throw json.Error("expected a JSON object with images, annotations and categories");
        while (json.Read() && json.TokenType == JsonTokenType.PropertyName)
        {
            if (json.NameIs("images"u8)) { sawImages = true; ReadArray(json, "images", () => ReadImage(json, images.Count, issues, images)); }
            else if (json.NameIs("annotations"u8)) { sawAnns = true; ReadArray(json, "annotations", () => ReadAnnotation(json, anns.Count, issues, anns)); }
            else if (json.NameIs("categories"u8)) { sawCats = true; ReadArray(json, "categories", () => ReadCategory(json, cats.Count, issues, cats)); }
            else { json.Read(); if (json.TokenType is JsonTokenType.StartArray or JsonTokenType.StartObject) json.SkipValue(); }
        }
        var missing = new[] { ("images", sawImages), ("annotations", sawAnns), ("categories", sawCats) }.Where(m => !m.Item2).Select(m => m.Item1).ToList();
        if (missing.Count > 0)
            throw new CocoFormatException(file, $"not a COCO instances file (no top-level {string.Join(", ", missing)})");
        // The parser stops at the closing brace: hash what follows it too (a CryptoStream finishes the hash at EOF).
        var rest = new byte[4096];
        while (hashed.Read(rest) > 0) { }
        return new CocoAnnotations
        {
            SourceFile = file, Images = images, Annotations = anns, Categories = cats, Issues = issues,
            Sha256 = Convert.ToHexString(sha.Hash!).ToLowerInvariant(),
        };
    }

    static void ReadArray(JsonTokenStream json, string name, Action readElement)
    {
        json.Read();
        if (json.TokenType != JsonTokenType.StartArray) throw json.Error($"'{name}' must be an array");
        while (json.Read() && json.TokenType != JsonTokenType.EndArray)
        {
            if (json.TokenType != JsonTokenType.StartObject) throw json.Error($"'{name}' elements must be objects");
            readElement();
        }
    }

    static void ReadImage(JsonTokenStream json, int index, List<CocoFieldIssue> issues, List<CocoImage> into)
    {
        long? id = null; string? file = null; long? w = null, h = null;
        string where = $"images[{index}]";
        int before = issues.Count;
        while (json.Read() && json.TokenType == JsonTokenType.PropertyName)
        {
            if (json.NameIs("id"u8)) id = ReadInt(json, where, "id", issues);
            else if (json.NameIs("file_name"u8)) file = ReadString(json, where, "file_name", issues);
            else if (json.NameIs("width"u8)) w = ReadInt(json, where, "width", issues);
            else if (json.NameIs("height"u8)) h = ReadInt(json, where, "height", issues);
            else SkipProperty(json);
        }
        if (id is null || file is null || w is null || h is null)
        {
            var missing = new[] { ("id", id is null), ("file_name", file is null), ("width", w is null), ("height", h is null) }
                .Where(m => m.Item2).Select(m => m.Item1).ToList();
            if (issues.Count == before) issues.Add(new(where, "missing or invalid " + string.Join(", ", missing), missing[0]));
            if (id is null) return;
        }
        into.Add(new CocoImage(id.Value, file ?? "", (int)(w ?? 0), (int)(h ?? 0)));
    }

    static void ReadAnnotation(JsonTokenStream json, int index, List<CocoFieldIssue> issues, List<CocoAnnotation> into)
    {
        long? id = null, imageId = null, catId = null; double[]? bbox = null; double? area = null; bool? crowd = null;
        string where = $"annotations[{index}]";
        int before = issues.Count;
        while (json.Read() && json.TokenType == JsonTokenType.PropertyName)
        {
            if (json.NameIs("id"u8)) id = ReadInt(json, where, "id", issues);
            else if (json.NameIs("image_id"u8)) imageId = ReadInt(json, where, "image_id", issues);
            else if (json.NameIs("category_id"u8)) catId = ReadInt(json, where, "category_id", issues);
            else if (json.NameIs("bbox"u8)) bbox = ReadBbox(json, where, issues);
            else if (json.NameIs("area"u8)) area = ReadNumber(json, where, "area", issues);
            else if (json.NameIs("iscrowd"u8))
            {
                json.Read();
                crowd = json.TokenType switch
                {
                    JsonTokenType.True => true,
                    JsonTokenType.Number => json.GetDouble() != 0,
                    _ => false,
                };
                if (json.TokenType is JsonTokenType.StartArray or JsonTokenType.StartObject) json.SkipValue();
            }
            else SkipProperty(json);
        }
        if (id is null || imageId is null || catId is null)
        {
            var missing = new[] { ("id", id is null), ("image_id", imageId is null), ("category_id", catId is null) }
                .Where(m => m.Item2).Select(m => m.Item1).ToList();
            if (issues.Count == before) issues.Add(new(where, "missing or invalid " + string.Join(", ", missing), missing[0]));
            return;
        }
        if (bbox is null) issues.Add(new($"annotation id {id}", "missing or invalid bbox (expected [x, y, w, h])", "bbox"));
        into.Add(new CocoAnnotation(id.Value, imageId.Value, catId.Value, bbox, area, crowd));
    }

    static void ReadCategory(JsonTokenStream json, int index, List<CocoFieldIssue> issues, List<CocoCategory> into)
    {
        long? id = null; string? name = null;
        string where = $"categories[{index}]";
        while (json.Read() && json.TokenType == JsonTokenType.PropertyName)
        {
            if (json.NameIs("id"u8)) id = ReadInt(json, where, "id", issues);
            else if (json.NameIs("name"u8)) name = ReadString(json, where, "name", issues);
            else SkipProperty(json);
        }
        if (id is null) { issues.Add(new(where, "missing or invalid id", "id")); return; }
        into.Add(new CocoCategory(id.Value, name ?? $"category_{id}"));
    }

    static void SkipProperty(JsonTokenStream json)
    {
        json.Read();
        if (json.TokenType is JsonTokenType.StartArray or JsonTokenType.StartObject) json.SkipValue();
    }

    static long? ReadInt(JsonTokenStream json, string where, string name, List<CocoFieldIssue> issues)
    {
        json.Read();
        if (json.TokenType == JsonTokenType.Number)
        {
            if (json.TryGetInt64(out long v)) return v;
            double d = json.GetDouble();   // 640.0 is written by some converters
            if (d == Math.Floor(d) && Math.Abs(d) < 9e15) return (long)d;
        }
        else if (json.TokenType is JsonTokenType.StartArray or JsonTokenType.StartObject) json.SkipValue();
        issues.Add(new(where, $"'{name}' must be an integer", name));
        return null;
    }

    static double? ReadNumber(JsonTokenStream json, string where, string name, List<CocoFieldIssue> issues)
    {
        json.Read();
        if (json.TokenType == JsonTokenType.Number) return json.GetDouble();
        if (json.TokenType is JsonTokenType.StartArray or JsonTokenType.StartObject) json.SkipValue();
        issues.Add(new(where, $"'{name}' must be a number", name));
        return null;
    }

    static string? ReadString(JsonTokenStream json, string where, string name, List<CocoFieldIssue> issues)
    {
        json.Read();
        if (json.TokenType == JsonTokenType.String) return json.GetString();
        if (json.TokenType is JsonTokenType.StartArray or JsonTokenType.StartObject) json.SkipValue();
        issues.Add(new(where, $"'{name}' must be a string", name));
        return null;
    }

    static double[]? ReadBbox(JsonTokenStream json, string where, List<CocoFieldIssue> issues)
    {
        json.Read();
        if (json.TokenType != JsonTokenType.StartArray)
        {
            if (json.TokenType == JsonTokenType.StartObject) json.SkipValue();
            return null;
        }
        var values = new List<double>(4);
        bool ok = true;
        while (json.Read() && json.TokenType != JsonTokenType.EndArray)
        {
            if (json.TokenType == JsonTokenType.Number) values.Add(json.GetDouble());
            else { ok = false; if (json.TokenType is JsonTokenType.StartArray or JsonTokenType.StartObject) json.SkipValue(); }
        }
        return ok && values.Count == 4 ? values.ToArray() : null;
    }
}
