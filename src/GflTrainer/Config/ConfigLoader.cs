using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace GflTrainer.Config;

/// <summary>Reads a YAML config with mmdetection-style inheritance and overrides, then binds and validates it.
/// <list type="number">
/// <item><c>_base_: [a.yaml, b.yaml]</c> (or one string), paths relative to the file that names them, are
/// loaded recursively and deep-merged in order; the file's own keys are merged last. Merging: sections merge key
/// by key, anything else (scalars, lists) is replaced whole by the later value; a section with
/// <c>_delete_: true</c> replaces instead of merging (as mmdetection).</item>
/// <item><c>--set a.b.c=value</c> overrides are applied on top (<see cref="ConfigOverride"/>).</item>
/// <item>The tree is bound to <see cref="GflConfig"/>: every unknown key, wrong type, out-of-range value and
/// inconsistent combination is collected with its file and line, then one
/// <see cref="ConfigValidationException"/> (exit code 2) lists them all.</item>
/// </list>
/// Relative paths inside the config (data files, pretrained weights, work_dir) are kept as written and resolved
/// against the working directory at use, as mmdetection does (its <c>data_root='data/coco/'</c>).</summary>
public static class ConfigLoader
{
    const string BaseKey = "_base_";
    const string DeleteKey = "_delete_";

    /// <summary>Loads <paramref name="configFile"/> with its bases and the <paramref name="overrides"/>
    /// (<c>key=value</c> each).</summary>
    /// <exception cref="ConfigValidationException">Any problem in any file or override.</exception>
    /// <exception cref="GflConfigException">The config file does not exist.</exception>
    public static GflConfig Load(string configFile, IEnumerable<string>? overrides = null)
    {
        var full = Path.GetFullPath(configFile);
        if (!File.Exists(full))
            throw new GflConfigException($"config file not found: {configFile}");

        var problems = new List<ConfigProblem>();
        var tree = ReadTree(full, () => new StreamReader(full), [], problems) ?? new ConfigMap(new SourceMark(Display(full), 1));
        return Resolve(tree, full, overrides, problems);
    }

    /// <summary>Loads configuration text that has no file of its own, e.g. the config.yaml a checkpoint carries.
    /// <paramref name="sourceName"/> names it in problems and stands in for the file name (a <c>_base_</c> in
    /// the text is resolved against the working directory).</summary>
    /// <exception cref="ConfigValidationException">Any problem in the text or an override.</exception>
    public static GflConfig LoadYaml(string yaml, string sourceName, IEnumerable<string>? overrides = null)
    {
        var problems = new List<ConfigProblem>();
        var pseudoPath = Path.GetFullPath(sourceName);
        var tree = ReadTree(pseudoPath, () => new StringReader(yaml), [], problems) ?? new ConfigMap(new SourceMark(sourceName, 1));
        return Resolve(tree, pseudoPath, overrides, problems);
    }

    static GflConfig Resolve(ConfigMap tree, string full, IEnumerable<string>? overrides, List<ConfigProblem> problems)
    {
        foreach (var text in overrides ?? [])
            ConfigOverride.Parse(text, problems)?.ApplyTo(tree);

        var binder = new ConfigBinder();
        var config = binder.BindRoot<GflConfig>(tree);
        ConfigValidator.Check(config, binder);
        problems.AddRange(binder.Problems);
        if (problems.Count > 0)
            throw new ConfigValidationException(problems
                .OrderBy(p => p.File == ConfigOverride.SourceName || p.File == SourceMark.Default.File)
                .ThenBy(p => p.File, StringComparer.Ordinal).ThenBy(p => p.Line).ToArray());

        if (config.Runtime.WorkDir == null)
            config = config with { Runtime = config.Runtime with { WorkDir = "runs/" + Path.GetFileNameWithoutExtension(full) } };
        return config;
    }

    /// <summary>One file merged over its bases, or null when the file itself cannot be read.</summary>
    static ConfigMap? ReadTree(string fullPath, Func<TextReader> open, List<string> chain, List<ConfigProblem> problems)
    {
        var display = Display(fullPath);
        var root = Parse(open, display, problems);
        if (root == null) return null;

        var merged = new ConfigMap(root.Mark);
        if (root.Entries.Remove(BaseKey, out var baseEntry))
        {
            chain.Add(fullPath);
            foreach (var (relative, mark) in BasePaths(baseEntry, problems))
            {
                var basePath = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(fullPath)!, relative));
                if (chain.Contains(basePath))
                    problems.Add(mark.Problem(BaseKey, $"circular inheritance: {Display(basePath)} is already being loaded"));
                else if (!File.Exists(basePath))
                    problems.Add(mark.Problem(BaseKey, $"base file not found: {Display(basePath)} (paths are relative to {display})"));
                else if (ReadTree(basePath, () => new StreamReader(basePath), chain, problems) is { } baseTree)
                    Merge(merged, baseTree, problems);
            }
            chain.RemoveAt(chain.Count - 1);
        }
        Merge(merged, root, problems);
        return merged;
    }

    static ConfigMap? Parse(Func<TextReader> open, string display, List<ConfigProblem> problems)
    {
        var stream = new YamlStream();
        try
        {
            using var reader = open();
            stream.Load(reader);
        }
        catch (YamlException e)
        {
            // YamlDotNet prefixes "(Line: 3, Col: 5, Idx: 20) - (Line: ...): "; the line is reported separately.
            var message = Regex.Replace(e.InnerException?.Message ?? e.Message, @"^\(Line: .*?\):\s*", "");
            problems.Add(new(display, (int)e.Start.Line, "(yaml)", message));
            return null;
        }
        if (stream.Documents.Count == 0) return new ConfigMap(new SourceMark(display, 1));
        var node = ConfigYaml.ToNode(stream.Documents[0].RootNode, display, withLines: true);
        if (node is ConfigMap map) return map;
        if (node is ConfigScalar { IsNull: true }) return new ConfigMap(node.Mark);
        problems.Add(node.Mark.Problem("(root)", "a config file must be a mapping of sections (model:, data:, train:, ...)"));
        return null;
    }

    static IEnumerable<(string Path, SourceMark Mark)> BasePaths(ConfigEntry entry, List<ConfigProblem> problems)
    {
        var items = entry.Value switch
        {
            ConfigScalar s => [s],
            ConfigList l => l.Items,
            _ => [],
        };
        if (entry.Value is ConfigMap)
            problems.Add(entry.Value.Mark.Problem(BaseKey, "expected a file name or a list of file names"));
        foreach (var item in items)
        {
            if (item is ConfigScalar { IsNull: false } s) yield return (s.Text, s.Mark);
            else problems.Add(item.Mark.Problem(BaseKey, "expected a file name"));
        }
    }

    /// <summary>Deep merge, later wins: sections merge, scalars and lists are replaced whole.</summary>
    static void Merge(ConfigMap target, ConfigMap source, List<ConfigProblem> problems)
    {
        foreach (var entry in source.Entries.Values)
        {
            bool replace = entry.Value is ConfigMap m && TakeDeleteFlag(m, problems);
            if (!replace && entry.Value is ConfigMap sourceChild
                && target.Entries.TryGetValue(entry.Key, out var existing) && existing.Value is ConfigMap targetChild)
            {
                Merge(targetChild, sourceChild, problems);
                continue;
            }
            if (entry.Value is ConfigMap whole) StripDeleteFlags(whole, problems);
            target.Entries[entry.Key] = entry;
        }
    }

    static bool TakeDeleteFlag(ConfigMap map, List<ConfigProblem> problems)
    {
        if (!map.Entries.Remove(DeleteKey, out var flag)) return false;
        if (flag.Value is ConfigScalar { Quoted: false, Text: "true" or "True" or "TRUE" }) return true;
        if (flag.Value is ConfigScalar { Quoted: false, Text: "false" or "False" or "FALSE" }) return false;
        problems.Add(flag.Value.Mark.Problem(DeleteKey, "expected true or false"));
        return false;
    }

    static void StripDeleteFlags(ConfigMap map, List<ConfigProblem> problems)
    {
        TakeDeleteFlag(map, problems);
        foreach (var child in map.Entries.Values)
            if (child.Value is ConfigMap m) StripDeleteFlags(m, problems);
    }

    /// <summary>Paths in messages: relative to the working directory when below it, else absolute.</summary>
    static string Display(string fullPath)
    {
        var relative = Path.GetRelativePath(Environment.CurrentDirectory, fullPath);
        return relative.StartsWith("..", StringComparison.Ordinal) || Path.IsPathRooted(relative) ? fullPath : relative;
    }
}
