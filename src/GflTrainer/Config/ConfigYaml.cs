using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace GflTrainer.Config;

/// <summary>YamlDotNet's representation model → <see cref="ConfigNode"/>, keeping the line of every node.</summary>
internal static class ConfigYaml
{
    /// <param name="node">Parsed YAML.</param>
    /// <param name="source">File name shown in problems.</param>
    /// <param name="withLines">False for <c>--set</c> values, whose "line" would only be a column of one token.</param>
    public static ConfigNode ToNode(YamlNode node, string source, bool withLines)
    {
        SourceMark At(YamlNode n) => new(source, withLines ? (int)n.Start.Line : 0);
        switch (node)
        {
            case YamlMappingNode mapping:
                var map = new ConfigMap(At(node));
                foreach (var (k, v) in mapping.Children)
                {
                    var key = (k as YamlScalarNode)?.Value ?? k.ToString();
                    map.Entries[key] = new ConfigEntry(key, At(k), ToNode(v, source, withLines));
                }
                return map;
            case YamlSequenceNode sequence:
                return new ConfigList(At(node), sequence.Children.Select(c => ToNode(c, source, withLines)).ToArray());
            case YamlScalarNode scalar:
                return new ConfigScalar(At(node), scalar.Value ?? "", scalar.Style is not (ScalarStyle.Plain or ScalarStyle.Any));
            default:
                return new ConfigScalar(At(node), node.ToString(), true);
        }
    }
}
