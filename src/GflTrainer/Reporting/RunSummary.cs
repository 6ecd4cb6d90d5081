using System.Text.Json;
using GflTrainer.Data;

namespace GflTrainer.Reporting;

/// <summary>One split as the run read it (after the loader's filtering rules).</summary>
/// <param name="BoxesPerClass">ground-truth boxes per class name, in label order; crowd regions not counted.</param>
public sealed record RunSplitSummary(string Name, string AnnFile, string ImgPrefix, int Images, int Boxes, int CrowdRegions,
    int ImagesWithoutBoxes, IReadOnlyDictionary<string, int> BoxesPerClass);

/// <summary><c>run.json</c> in the work dir: what the report cannot read from the other files — the command, the seed
/// actually used and the data the run saw. Written by <c>gfl train</c> when it starts (each resume rewrites it).</summary>
/// <param name="Command">the command as given (config path and overrides).</param>
/// <param name="Reproduce">a command that trains the same run again from the saved resolved config and seed.</param>
public sealed record RunSummary(string Command, string Reproduce, long Seed, string Device, int WorldSize, string GflVersion,
    IReadOnlyList<RunSplitSummary> Splits)
{
    public const string FileName = "run.json";

    static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    internal static RunSplitSummary Describe(string name, string annFile, string imgPrefix, IDetectionDataset dataset)
    {
        var perClass = dataset.Categories.Categories.ToDictionary(c => c.Name, _ => 0);
        int boxes = 0, crowd = 0, empty = 0;
        foreach (var e in dataset.Entries)
        {
            foreach (var l in e.Labels) perClass[dataset.Categories.Categories[(int)l].Name]++;
            boxes += e.BoxCount;
            crowd += e.IgnoredBoxes.Length / 4;
            if (e.BoxCount == 0) empty++;
        }
        return new RunSplitSummary(name, annFile, imgPrefix, dataset.Count, boxes, crowd, empty, perClass);
    }

    public void Write(string workDir)
    {
        var path = Path.Combine(workDir, FileName);
        File.WriteAllBytes(path + ".tmp", JsonSerializer.SerializeToUtf8Bytes(this, Json));
        File.Move(path + ".tmp", path, overwrite: true);
    }

    /// <returns>null when the file is missing or unreadable (a run from before this file existed).</returns>
    public static RunSummary? Read(string workDir)
    {
        var path = Path.Combine(workDir, FileName);
        if (!File.Exists(path)) return null;
        try { return JsonSerializer.Deserialize<RunSummary>(File.ReadAllBytes(path), Json); }
        catch (JsonException) { return null; }
    }

    /// <summary>A shell-safe word (single quotes when needed).</summary>
    public static string Quote(string s) =>
        s.Length > 0 && s.All(c => char.IsAsciiLetterOrDigit(c) || "-_./=:,+@%".Contains(c)) ? s : "'" + s.Replace("'", "'\\''") + "'";
}
