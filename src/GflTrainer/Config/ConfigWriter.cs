using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.RepresentationModel;

namespace GflTrainer.Config;

/// <summary>Writes a resolved <see cref="GflConfig"/> as YAML that <see cref="ConfigLoader"/> reads back to an
/// equal configuration: every key, in declaration order, no <c>_base_</c>. A run saves it as config.yaml and
/// checkpoints carry the same text.</summary>
public static class ConfigWriter
{
    /// <summary>The YAML text (strings double-quoted, lists in flow style).</summary>
    public static string ToYaml(GflConfig config)
    {
        var document = new YamlDocument(Section(config));
        using var writer = new StringWriter { NewLine = "\n" };
        new YamlStream(document).Save(writer, assignAnchors: false);
        var text = writer.ToString();
        // YamlStream ends each document with an explicit "..." marker; a config file is one document.
        return text.EndsWith("...\n", StringComparison.Ordinal) ? text[..^4] : text;
    }

    /// <summary>Writes <see cref="ToYaml"/> to <paramref name="path"/> with a header line.</summary>
    public static void Save(GflConfig config, string path) =>
        File.WriteAllText(path, "# gfl resolved configuration (bases and --set overrides applied)\n" + ToYaml(config));

    static YamlMappingNode Section(object record)
    {
        var map = new YamlMappingNode();
        foreach (var p in ConfigSchema.Properties(record.GetType()))
            map.Add(new YamlScalarNode(p.Key), Value(p.Info.GetValue(record)));
        return map;
    }

    static YamlNode Value(object? value) => value switch
    {
        null => new YamlScalarNode("null") { Style = ScalarStyle.Plain },
        string s => new YamlScalarNode(s) { Style = ScalarStyle.DoubleQuoted },
        bool or int or long or double or float or Enum => new YamlScalarNode(ConfigSchema.FormatValue(value)) { Style = ScalarStyle.Plain },
        System.Collections.IEnumerable list => new YamlSequenceNode(list.Cast<object?>().Select(Value)) { Style = SequenceStyle.Flow },
        _ when ConfigSchema.IsRecord(value.GetType()) => Section(value),
        _ => throw new NotSupportedException($"config value of type {value.GetType()} has no YAML form"),
    };
}
