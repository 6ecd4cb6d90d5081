using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GflTrainer.Checkpoints;

/// <summary>How file names become module state-dict names: a source name must start with
/// <paramref name="SourcePrefix"/>, which is replaced by <paramref name="TargetPrefix"/>. Only module names under
/// <paramref name="TargetPrefix"/> are expected to be present (a backbone file is not "missing" the head).</summary>
internal sealed record WeightNameMapping(string SourcePrefix, string TargetPrefix)
{
    /// <summary>File names equal module names (our own checkpoints, converted mmdetection checkpoints).</summary>
    public static WeightNameMapping Identity { get; } = new("", "");

    /// <summary>A torchvision ResNet state dict (<c>conv1.weight</c>, <c>layer1.0.bn1.*</c>, ...) into a detector's
    /// backbone (<c>backbone.conv1.weight</c>, ...): mmdetection's <c>init_cfg=Pretrained('torchvision://resnet50')</c>.</summary>
    public static WeightNameMapping TorchvisionBackbone { get; } = new("", "backbone.");
}

/// <summary>Outcome of a load, every list in module (target) names except <paramref name="Unexpected"/> and
/// <paramref name="Ignored"/>, which hold file names.</summary>
/// <param name="Loaded">names copied into the module.</param>
/// <param name="Missing">module names under the target prefix that the file did not provide (left as they were).</param>
/// <param name="Unexpected">file names with no module counterpart.</param>
/// <param name="ShapeMismatched">"name: file [..] vs module [..]" for names present in both with different shapes (not copied).</param>
/// <param name="Ignored">file names skipped on purpose (e.g. torchvision's classifier <c>fc.*</c>).</param>
internal sealed record WeightLoadReport(IReadOnlyList<string> Loaded, IReadOnlyList<string> Missing,
    IReadOnlyList<string> Unexpected, IReadOnlyList<string> ShapeMismatched, IReadOnlyList<string> Ignored)
{
    /// <summary>True when every expected name was loaded and nothing was unexpected or mismatched.</summary>
    public bool IsExact => Missing.Count == 0 && Unexpected.Count == 0 && ShapeMismatched.Count == 0;
}

/// <summary>Copies named weights from a safetensors file into a module by state-dict name.</summary>
/// <remarks>Values are copied <b>in place</b> under <c>no_grad</c> into the module's existing parameters and buffers
/// (converting dtype and device), never by replacing <c>Parameter</c> objects: an optimizer built earlier keeps
/// references to them (TorchSharp's <c>Module.load</c>/<c>to()</c> replace them and break SGD state).</remarks>
internal static class WeightLoader
{
    /// <summary>torchvision's ImageNet classifier, absent from a detection backbone; mmdetection drops it the same
    /// way (non-strict load whose only unexpected keys are <c>fc.weight</c> and <c>fc.bias</c>).</summary>
    public static IReadOnlyList<string> TorchvisionClassifierPrefixes { get; } = new[] { "fc." };

    /// <summary>Loads a torchvision ResNet safetensors export (see scripts/export_torchvision_resnet.py) into the
    /// detector's backbone, ignoring <c>fc.*</c>; any missing, unexpected or mis-shaped backbone name fails.</summary>
    public static WeightLoadReport LoadTorchvisionBackbone(Module module, string path) =>
        Load(module, path, WeightNameMapping.TorchvisionBackbone, strict: true, TorchvisionClassifierPrefixes);

    /// <summary>Reads <paramref name="path"/> and copies its tensors into <paramref name="module"/>.</summary>
    /// <param name="mapping">file-to-module name mapping; null = identity.</param>
    /// <param name="strict">true: throw <see cref="GflConfigException"/> naming every missing, unexpected and
    /// mis-shaped key (nothing is copied then); false: copy what matches and return the report.</param>
    /// <param name="ignoredSourcePrefixes">file names starting with one of these are skipped silently.</param>
    public static WeightLoadReport Load(Module module, string path, WeightNameMapping? mapping = null, bool strict = true,
        IReadOnlyCollection<string>? ignoredSourcePrefixes = null)
    {
        using var content = Safetensors.Read(path);
        return Load(module, content.Tensors, mapping, strict, ignoredSourcePrefixes, path);
    }

    /// <summary>As <see cref="Load(Module,string,WeightNameMapping?,bool,IReadOnlyCollection{string}?)"/> from
    /// tensors already in memory; <paramref name="sourceName"/> only labels error messages.</summary>
    public static WeightLoadReport Load(Module module, IReadOnlyDictionary<string, Tensor> source,
        WeightNameMapping? mapping = null, bool strict = true, IReadOnlyCollection<string>? ignoredSourcePrefixes = null,
        string sourceName = "weights")
    {
        mapping ??= WeightNameMapping.Identity;
        ignoredSourcePrefixes ??= Array.Empty<string>();
        var targets = module.state_dict();
        var pairs = new List<(Tensor Target, Tensor Source)>();
        var loaded = new List<string>();
        var unexpected = new List<string>();
        var mismatched = new List<string>();
        var ignored = new List<string>();
        foreach (var (name, tensor) in source.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            if (ignoredSourcePrefixes.Any(p => name.StartsWith(p, StringComparison.Ordinal)))
            {
                ignored.Add(name);
                continue;
            }
            if (!name.StartsWith(mapping.SourcePrefix, StringComparison.Ordinal))
            {
                unexpected.Add(name);
                continue;
            }
            var targetName = mapping.TargetPrefix + name[mapping.SourcePrefix.Length..];
            if (!targets.TryGetValue(targetName, out var target))
            {
                unexpected.Add(name);
                continue;
            }
            if (!target.shape.SequenceEqual(tensor.shape))
            {
                mismatched.Add($"{targetName}: file [{string.Join(", ", tensor.shape)}] vs module [{string.Join(", ", target.shape)}]");
                continue;
            }
            pairs.Add((target, tensor));
            loaded.Add(targetName);
        }
        var loadedSet = loaded.ToHashSet(StringComparer.Ordinal);
        var missing = targets.Keys
            .Where(k => k.StartsWith(mapping.TargetPrefix, StringComparison.Ordinal) && !loadedSet.Contains(k))
            .Where(k => !mismatched.Any(m => m.StartsWith(k + ":", StringComparison.Ordinal)))
            .OrderBy(k => k, StringComparer.Ordinal).ToList();
        var report = new WeightLoadReport(loaded, missing, unexpected, mismatched, ignored);

        if (strict && !report.IsExact)
            throw new GflConfigException($"{sourceName}: weights do not match the model ({Describe(report)}); " +
                "pass a matching file or load non-strictly");

        using (no_grad())
            foreach (var (target, value) in pairs)
                target.copy_(value);
        return report;
    }

    /// <summary>One line naming the offending keys (the first few of each kind, then a count).</summary>
    public static string Describe(WeightLoadReport report)
    {
        static string List(string label, IReadOnlyList<string> names) =>
            names.Count == 0 ? "" : $"{label} {names.Count}: " + string.Join(", ", names.Take(8)) + (names.Count > 8 ? ", ..." : "");
        var parts = new[]
        {
            List("missing", report.Missing), List("unexpected", report.Unexpected),
            List("shape mismatch", report.ShapeMismatched),
        }.Where(p => p.Length > 0);
        return string.Join("; ", parts);
    }
}
