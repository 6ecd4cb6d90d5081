using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace GflTrainer.Data.Conversion;

/// <summary>The class names of an Ultralytics/Darknet YOLO set, looked up where those tools keep them:
/// <c>data.yaml</c> (or <c>data.yml</c>) <c>names:</c> as a list or as a <c>{0: name}</c> map, else
/// <c>classes.txt</c> or <c>obj.names</c> (one per line). Index i is YOLO class i.</summary>
public static class YoloClassNames
{
    public static readonly string[] Files = ["data.yaml", "data.yml", "classes.txt", "obj.names"];

    /// <summary>The names and the file they came from, or null when none of <see cref="Files"/> exists.</summary>
    public static (IReadOnlyList<string> Names, string File)? Find(string source)
    {
        foreach (var f in Files)
        {
            var path = Path.Combine(source, f);
            if (!File.Exists(path)) continue;
            return (f.EndsWith(".txt", StringComparison.Ordinal) || f.EndsWith(".names", StringComparison.Ordinal)
                ? ClassNames.ReadFile(path, "SRC") : ReadYaml(path), path);
        }
        return null;
    }

    /// <summary><c>names:</c> of a data.yaml. A map must have the keys 0..N-1 (Ultralytics indexes by them; a gap
    /// would shift every later class).</summary>
    public static IReadOnlyList<string> ReadYaml(string path)
    {
        var yaml = new YamlStream();
        try
        {
            using var reader = new StreamReader(path);
            yaml.Load(reader);
        }
        catch (YamlException e)
        {
            throw new GflConfigException($"{path}:{e.Start.Line}: malformed YAML ({e.Message})") { Key = "SRC" };
        }
        if (yaml.Documents.Count == 0 || yaml.Documents[0].RootNode is not YamlMappingNode root)
            throw new GflConfigException($"{path}: expected a mapping with 'names:'") { Key = "SRC" };
        var node = root.Children.FirstOrDefault(kv => (kv.Key as YamlScalarNode)?.Value == "names").Value
                   ?? throw new GflConfigException($"{path}: no 'names:' (the class names, a list or a {{0: name}} map)") { Key = "SRC" };
        List<string> names;
        switch (node)
        {
            case YamlSequenceNode seq:
                names = seq.Children.Select(c => Scalar(c, path)).ToList();
                break;
            case YamlMappingNode map:
                var byIndex = new SortedDictionary<int, string>();
                foreach (var (k, v) in map.Children)
                {
                    if (!int.TryParse((k as YamlScalarNode)?.Value, out int i) || i < 0 || !byIndex.TryAdd(i, Scalar(v, path)))
                        throw new GflConfigException($"{path}:{k.Start.Line}: names key '{k}' is not a new class index 0, 1, ...") { Key = "SRC" };
                }
                if (byIndex.Count > 0 && byIndex.Keys.Last() != byIndex.Count - 1)
                    throw new GflConfigException($"{path}:{map.Start.Line}: names keys must be 0..{byIndex.Count - 1} without gaps") { Key = "SRC" };
                names = byIndex.Values.ToList();
                break;
            default:
                throw new GflConfigException($"{path}:{node.Start.Line}: 'names:' must be a list or a {{0: name}} map") { Key = "SRC" };
        }
        if (names.Count == 0) throw new GflConfigException($"{path}: 'names:' is empty") { Key = "SRC" };
        var dup = names.GroupBy(n => n).FirstOrDefault(g => g.Count() > 1);
        if (dup is not null) throw new GflConfigException($"{path}: class '{dup.Key}' is named twice") { Key = "SRC" };
        return names;
    }

    static string Scalar(YamlNode n, string path) => n is YamlScalarNode { Value: { Length: > 0 } v }
        ? v.Trim() : throw new GflConfigException($"{path}:{n.Start.Line}: a class name must be a non-empty string") { Key = "SRC" };
}
