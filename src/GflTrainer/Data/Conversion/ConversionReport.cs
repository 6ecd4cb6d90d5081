namespace GflTrainer.Data.Conversion;

/// <summary>What a converter did to one item it could not take as it was, in report order.</summary>
public enum ConversionIssueKind
{
    // Skipped: the item is not in the output.
    MalformedFile,
    MalformedBox,
    UnknownClass,
    DegenerateBox,
    MissingImage,
    UndecodableImage,
    MissingAnnotation,
    LabelWithoutImage,
    // Repaired: kept, changed.
    BoxClipped,
    SegmentToBox,
    // Kept as it was; listed so that nothing changes silently.
    Difficult,
    Truncated,
    SizeMismatch,
    EmptyLabelFile,
    MissingLabelFile,
}

/// <summary>How an issue affected the output.</summary>
public enum ConversionAction { Skipped, Repaired, Noted }

/// <summary>One issue: the split it affects, the source it came from (<c>file:line</c> or <c>file</c>, relative to
/// the source folder) and what was done.</summary>
public sealed record ConversionIssue(string Split, ConversionIssueKind Kind, string Source, string Message)
{
    public ConversionAction Action => Kind switch
    {
        <= ConversionIssueKind.LabelWithoutImage => ConversionAction.Skipped,
        <= ConversionIssueKind.SegmentToBox => ConversionAction.Repaired,
        _ => ConversionAction.Noted,
    };
}

/// <summary>Every item a conversion skipped, repaired or wants the user to know about, each with where it came
/// from: a converted set that silently lost boxes trains worse with no clue why.</summary>
public sealed class ConversionReport
{
    readonly List<ConversionIssue> _issues = [];

    public IReadOnlyList<ConversionIssue> Issues => _issues;

    public void Add(string split, ConversionIssueKind kind, string source, string message) =>
        _issues.Add(new ConversionIssue(split, kind, source, message));

    public int Count(string split, ConversionAction action) => _issues.Count(i => i.Split == split && i.Action == action);

    public int Count(string split, ConversionIssueKind kind) => _issues.Count(i => i.Split == split && i.Kind == kind);

    /// <summary>Writes the whole report: a count per split and kind, then every issue (no limit: this file is the
    /// record of what changed). No timestamps, so the same input gives the same bytes.</summary>
    public void Write(TextWriter w, IEnumerable<string> header)
    {
        foreach (var line in header) w.WriteLine(line);
        if (_issues.Count == 0) { w.WriteLine(); w.WriteLine("nothing skipped or repaired"); return; }
        foreach (var split in _issues.Select(i => i.Split).Distinct())
        {
            var ofSplit = _issues.Where(i => i.Split == split).ToList();
            w.WriteLine();
            w.WriteLine($"== {split}: {Count(split, ConversionAction.Skipped)} skipped, {Count(split, ConversionAction.Repaired)} repaired, " +
                        $"{Count(split, ConversionAction.Noted)} noted");
            foreach (var g in ofSplit.GroupBy(i => i.Kind).OrderBy(g => g.Key))
                w.WriteLine($"  {g.Key,-20} {g.First().Action.ToString().ToLowerInvariant(),-9} {g.Count(),7}");
            foreach (var g in ofSplit.GroupBy(i => i.Kind).OrderBy(g => g.Key))
            {
                w.WriteLine();
                w.WriteLine($"{g.Key} ({g.First().Action.ToString().ToLowerInvariant()}):");
                foreach (var i in g) w.WriteLine($"  {i.Source}: {i.Message}");
            }
        }
    }
}
