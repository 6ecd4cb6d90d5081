using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace GflTrainer.Config;

/// <summary>A <c>--set a.b.c=value</c> override (mmdetection's <c>--cfg-options</c>). The value is read as YAML
/// (<c>0.02</c>, <c>true</c>, <c>null</c>, <c>[1333, 800]</c>, <c>"text"</c>); a list-valued key also takes
/// <c>1,2</c>. Type checks happen when the merged tree is bound, exactly as for file values.</summary>
internal sealed record ConfigOverride(string Text, IReadOnlyList<string> Path, ConfigNode Value)
{
    /// <summary>The <see cref="SourceMark.File"/> of every override value.</summary>
    public const string SourceName = "--set";

    /// <summary>Parses <c>key=value</c>; a malformed one becomes a problem and yields null.</summary>
    public static ConfigOverride? Parse(string text, ICollection<ConfigProblem> problems)
    {
        int eq = text.IndexOf('=');
        var key = eq < 0 ? text.Trim() : text[..eq].Trim();
        var path = key.Split('.');
        if (eq < 0 || key.Length == 0 || path.Any(p => p.Length == 0))
        {
            problems.Add(new(SourceName, 0, text, "expected key=value with a dotted key, e.g. train.optimizer.lr=0.02"));
            return null;
        }
        try
        {
            var value = ConfigYaml.ToNode(ParseYamlValue(text[(eq + 1)..]), SourceName, withLines: false);
            return new ConfigOverride(text, path, value);
        }
        catch (YamlException e)
        {
            problems.Add(new(SourceName, 0, key, $"cannot read value '{text[(eq + 1)..]}': {e.Message}"));
            return null;
        }
    }

    static YamlNode ParseYamlValue(string value)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(value));
        return stream.Documents.Count == 0 ? new YamlScalarNode("") : stream.Documents[0].RootNode;
    }

    /// <summary>Writes the value into <paramref name="root"/>, creating sections on the way (a null or scalar
    /// in the way, e.g. <c>grad_clip: null</c>, is replaced by a section).</summary>
    public void ApplyTo(ConfigMap root)
    {
        var mark = Value.Mark;
        var map = root;
        foreach (var key in Path.SkipLast(1))
        {
            if (map.Entries.TryGetValue(key, out var entry) && entry.Value is ConfigMap child) { map = child; continue; }
            var created = new ConfigMap(mark);
            map.Entries[key] = new ConfigEntry(key, mark, created);
            map = created;
        }
        map.Entries[Path[^1]] = new ConfigEntry(Path[^1], mark, Value);
    }
}
