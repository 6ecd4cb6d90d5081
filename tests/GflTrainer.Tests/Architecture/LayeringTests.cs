using System.Reflection;
using Xunit;
using Xunit.Abstractions;

namespace GflTrainer.Tests.Architecture;

/// <summary>The folders are the architecture: each namespace of the library is a layer and may use only the layers
/// listed before it, read from the compiled assemblies (<see cref="TypeDependencies"/>). A new dependency that points
/// the wrong way (the model reaching into training, the metric into TorchSharp) fails here, with the types that make
/// it, whatever the file's using directives say.</summary>
public sealed class LayeringTests(ITestOutputHelper output)
{
    /// <summary>Bottom to top. <c>Core</c> is the root namespace (error types).</summary>
    internal static readonly string[] Layers =
    [
        "Core", "Coco", "Config", "Runtime", "Boxes", "Model", "Training.Targets", "Training.Losses", "Data",
        "Checkpoints", "Reporting", "Inference", "Export", "Training", "Diagnostics", "Benchmarks", "Cli",
    ];

    /// <summary>Layers that must stay free of TorchSharp: the metric evaluates any results file, and a configuration
    /// is checked without loading libtorch.</summary>
    static readonly string[] TorchFree = ["Core", "Coco", "Config"];

    static readonly Assembly Library = typeof(GflTrainer.Config.GflConfig).Assembly;
    static readonly Assembly Coco = typeof(GflTrainer.Coco.CocoEvaluator).Assembly;
    static readonly Assembly Cli = typeof(GflTrainer.Cli.GflApp).Assembly;

    internal static string? LayerOf(Type t)
    {
        while (t.DeclaringType is { } outer) t = outer;
        if (t.Assembly == Coco) return "Coco";
        if (t.Assembly == Cli) return "Cli";
        if (t.Assembly != Library) return null;
        var ns = t.Namespace ?? "";
        if (ns == "GflTrainer") return "Core";
        if (!ns.StartsWith("GflTrainer.", StringComparison.Ordinal)) return "Core";   // <PrivateImplementationDetails> etc.
        var rest = ns["GflTrainer.".Length..];
        return Layers.Where(l => rest == l || rest.StartsWith(l + ".", StringComparison.Ordinal))
            .OrderByDescending(l => l.Length).FirstOrDefault() ?? throw new InvalidOperationException(
                $"namespace {ns} ({t.FullName}) is no layer: add its folder to LayeringTests.Layers");
    }

    static IEnumerable<(string From, string To, Type FromType, Type ToType)> Edges()
    {
        foreach (var asm in new[] { Library, Coco, Cli })
            foreach (var (type, used) in TypeDependencies.Of(asm))
            {
                var from = LayerOf(type)!;
                foreach (var u in used)
                {
                    var to = u.Assembly.GetName().Name == "TorchSharp" ? "TorchSharp" : LayerOf(u);
                    if (to is not null && to != from) yield return (from, to, type, u);
                }
            }
    }

    [Fact]
    public void Every_dependency_points_down_the_layers()
    {
        var bad = Edges().Where(e => e.To != "TorchSharp" && Array.IndexOf(Layers, e.To) > Array.IndexOf(Layers, e.From))
            .GroupBy(e => (e.From, e.To))
            .Select(g => $"{g.Key.From} -> {g.Key.To}: " + string.Join(", ", g.Select(e => $"{e.FromType.Name} uses {e.ToType.Name}").Distinct().Take(6)))
            .ToList();
        foreach (var line in bad) output.WriteLine(line);
        Assert.True(bad.Count == 0, "dependencies against the layering:\n" + string.Join("\n", bad));
    }

    [Fact]
    public void The_metric_and_the_configuration_do_not_use_TorchSharp()
    {
        var bad = Edges().Where(e => e.To == "TorchSharp" && TorchFree.Contains(e.From))
            .Select(e => $"{e.FromType.FullName} uses {e.ToType.FullName}").Distinct().ToList();
        Assert.True(bad.Count == 0, string.Join("\n", bad));
        Assert.DoesNotContain(Coco.GetReferencedAssemblies(), a => a.Name == "TorchSharp" || a.Name == "GflTrainer");
    }

    [Fact]
    public void The_command_line_calls_the_library_and_never_tensors_or_the_model()
    {
        var bad = Edges().Where(e => e.From == "Cli" && e.To is "TorchSharp" or "Model" or "Training.Losses" or "Training.Targets" or "Boxes")
            .Select(e => $"{e.FromType.FullName} uses {e.ToType.FullName}").Distinct().ToList();
        Assert.True(bad.Count == 0, string.Join("\n", bad));
    }

    [Fact]
    public void The_checker_sees_dependencies_inside_method_bodies()
    {
        // A local, a call and a lambda are enough to register (the scanner must not read signatures only).
        var deps = TypeDependencies.Of(typeof(LayeringTests).Assembly);
        var probe = deps.Where(kv => kv.Key == typeof(Probe) || kv.Key.DeclaringType == typeof(Probe)).SelectMany(kv => kv.Value).ToHashSet();
        Assert.Contains(typeof(GflTrainer.Coco.CocoMetrics), probe);
        Assert.Contains(typeof(System.Text.StringBuilder), probe);
        Assert.Contains(typeof(Uri), probe);
    }

    [Fact]
    public void Every_namespace_is_a_layer()
    {
        foreach (var t in Library.GetTypes().Concat(Cli.GetTypes())) Assert.NotNull(LayerOf(t));
    }

    static class Probe
    {
        public static int Run()
        {
            var sb = new System.Text.StringBuilder();
            Func<object, string> f = o => new Uri("file:///x").ToString() + o;
            sb.Append(f(typeof(GflTrainer.Coco.CocoMetrics)));
            return sb.Length;
        }
    }
}
