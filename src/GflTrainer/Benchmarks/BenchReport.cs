using System.Text.Json;
using System.Text.Json.Nodes;
using GflTrainer.Runtime;
using TorchSharp;

namespace GflTrainer.Benchmarks;

/// <summary>What one <c>gfl bench</c> prints: ordered key/value rows, as a table and optionally as JSON with the same
/// field names as scripts/reference/bench.py, so scripts/bench_compare.sh can pair the two.</summary>
public sealed class BenchReport
{
    readonly List<(string Key, object Value)> _rows = [];

    /// <param name="bench">the subcommand (data, model, targets, train-step, infer, eval).</param>
    /// <param name="device">where it ran.</param>
    /// <param name="threads">worker threads; null reads libtorch's intra-op thread count (which loads libtorch:
    /// a torch-free benchmark passes its own so libtorch's pages stay out of its peak RSS).</param>
    public BenchReport(string bench, string device, int? threads = null)
    {
        Bench = bench;
        Add("device", device).Add("threads", threads ?? torch.get_num_threads()).Add("cores", Environment.ProcessorCount)
            .Add("malloc_hugetlb", NativeEnvironment.HugePageMallocActive ? "on" : "off");
    }

    public string Bench { get; }
    public IReadOnlyList<(string Key, object Value)> Rows => _rows;

    public BenchReport Add(string key, object value)
    {
        if (_rows.Any(r => r.Key == key)) throw new InvalidOperationException($"bench {Bench}: row {key} added twice");
        _rows.Add((key, value));
        return this;
    }

    /// <summary>Sets libtorch's intra-op threads (0 keeps libtorch's default); call before the benchmark runs.</summary>
    public static void UseThreads(int threads)
    {
        if (threads > 0) torch.set_num_threads(threads);
    }

    public void Write(TextWriter output, string? jsonPath)
    {
        output.WriteLine($"gfl bench {Bench}");
        int w = _rows.Max(r => r.Key.Length);
        foreach (var (k, v) in _rows) output.WriteLine($"  {k.PadRight(w)}  {Format(v)}");
        if (jsonPath is null) return;
        var obj = new JsonObject { ["impl"] = "gfl", ["bench"] = Bench };
        foreach (var (k, v) in _rows) obj[k] = JsonSerializer.SerializeToNode(v);
        var dir = Path.GetDirectoryName(Path.GetFullPath(jsonPath));
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
        File.WriteAllText(jsonPath, obj.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    static string Format(object v) => v switch
    {
        double d => d.ToString(Math.Abs(d) >= 100 ? "F1" : "F3"),
        IEnumerable<double> xs => "[" + string.Join(", ", xs.Select(x => x.ToString("F1"))) + "]",
        _ => v.ToString() ?? "",
    };
}
