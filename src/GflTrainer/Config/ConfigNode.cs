namespace GflTrainer.Config;

/// <summary>Where a config value came from: a file and 1-based line, or a <c>--set</c> override (line 0).</summary>
internal sealed record SourceMark(string File, int Line)
{
    public static readonly SourceMark Default = new("(default)", 0);

    public override string ToString() => Line > 0 ? $"{File}:{Line}" : File;

    public ConfigProblem Problem(string key, string message) => new(File, Line, key, message);
}

/// <summary>The untyped config tree after YAML parsing, <c>_base_</c> merging and overrides: every node keeps
/// the file and line it came from, so problems found while binding to records can name them.</summary>
internal abstract class ConfigNode(SourceMark mark)
{
    public SourceMark Mark { get; } = mark;
}

/// <summary>A mapping entry: the key's own position is what an "unknown key" error points at.</summary>
internal sealed record ConfigEntry(string Key, SourceMark KeyMark, ConfigNode Value);

internal sealed class ConfigMap(SourceMark mark) : ConfigNode(mark)
{
    public OrderedDictionary<string, ConfigEntry> Entries { get; } = new(StringComparer.Ordinal);
}

internal sealed class ConfigList(SourceMark mark, IReadOnlyList<ConfigNode> items) : ConfigNode(mark)
{
    public IReadOnlyList<ConfigNode> Items { get; } = items;
}

/// <summary>A scalar as written. <see cref="Quoted"/> scalars are always strings; plain <c>null</c>, <c>~</c>
/// and empty scalars are null (YAML 1.2 core schema).</summary>
internal sealed class ConfigScalar(SourceMark mark, string text, bool quoted) : ConfigNode(mark)
{
    public string Text { get; } = text;
    public bool Quoted { get; } = quoted;
    public bool IsNull => !Quoted && Text is "" or "~" or "null" or "Null" or "NULL";
}
