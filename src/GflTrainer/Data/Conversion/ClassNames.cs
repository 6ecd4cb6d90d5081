namespace GflTrainer.Data.Conversion;

/// <summary>Class name lists: the 20 Pascal VOC classes and <c>--classes FILE</c>. A list's order fixes the
/// category ids, 1..N (COCO's convention; training maps ids to labels in id order, so N names give labels 0..N-1
/// in the same order).</summary>
public static class ClassNames
{
    /// <summary>mmdetection's <c>VOCDataset.METAINFO['classes']</c> order, which VOC configs and checkpoints assume.</summary>
    public static readonly IReadOnlyList<string> Voc =
    [
        "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
        "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
    ];

    /// <summary>One name per line (trimmed; blank lines and a UTF-8 BOM ignored). Empty files and repeated
    /// names are refused: either would silently shift every id after them.</summary>
    public static IReadOnlyList<string> ReadFile(string file, string key = "--classes")
    {
        if (!File.Exists(file)) throw new GflConfigException($"{key} {file}: file not found") { Key = key };
        var names = new List<string>();
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        int lineNo = 0;
        foreach (var raw in File.ReadLines(file))
        {
            lineNo++;
            var name = raw.Trim().TrimStart('\uFEFF');
            if (name.Length == 0) continue;
            if (!seen.TryAdd(name, lineNo))
                throw new GflConfigException($"{key} {file}:{lineNo}: class '{name}' already named on line {seen[name]}") { Key = key };
            names.Add(name);
        }
        if (names.Count == 0) throw new GflConfigException($"{key} {file}: no class names (one per line expected)") { Key = key };
        return names;
    }

    /// <summary>Category entries with ids 1..N in list order.</summary>
    public static IReadOnlyList<CategoryEntry> ToCategories(IReadOnlyList<string> names) =>
        names.Select((n, i) => new CategoryEntry(i + 1, n)).ToList();
}
