using System.Text.Json;
using ScottPlot;

namespace GflTrainer.Reporting;

/// <summary>Renders loss, learning-rate and AP curves as PNGs from a run's <c>log.jsonl</c> and
/// <c>metrics.jsonl</c>. Reading the files (rather than in-memory history) keeps the plots complete across
/// resumed runs.</summary>
public static class TrainingPlots
{
    /// <summary>Writes loss.png, lr.png and (when evaluations exist) ap.png into <paramref name="workDir"/>/plots.
    /// Returns the paths written.</summary>
    public static IReadOnlyList<string> Render(string workDir)
    {
        var written = new List<string>();
        var outDir = Path.Combine(workDir, "plots");

        var iterLog = ReadJsonLines(Path.Combine(workDir, "log.jsonl"));
        if (iterLog.Count > 0)
        {
            var lossKeys = iterLog.SelectMany(r => r.Keys).Distinct()
                .Where(k => k.StartsWith("loss", StringComparison.Ordinal)).OrderBy(k => k == "loss" ? "" : k, StringComparer.Ordinal).ToList();
            written.Add(Charts.Save(Charts.Lines("Training loss", "iteration", "loss",
                lossKeys.Select(k => Series(iterLog, "iter", k))), outDir, "loss.png"));
            var lr = Series(iterLog, "iter", "lr");
            if (lr.Xs.Count > 0)
                written.Add(Charts.Save(Charts.Lines("Learning rate", "iteration", "lr", [lr]), outDir, "lr.png"));
        }

        var metrics = ReadJsonLines(Path.Combine(workDir, "metrics.jsonl"));
        if (metrics.Count > 0)
            written.Add(Charts.Save(Charts.Lines("Validation bbox AP", "epoch", "AP",
                new[] { "AP", "AP50", "AP75" }.Select(k => Series(metrics, "epoch", "bbox." + k) with { Label = k }),
                Alignment.LowerRight, markers: true), outDir, "ap.png"));
        return written;
    }

    static ChartSeries Series(List<Dictionary<string, double>> rows, string xKey, string yKey)
    {
        var xs = new List<double>(); var ys = new List<double>();
        foreach (var r in rows)
            if (r.TryGetValue(xKey, out var x) && r.TryGetValue(yKey, out var y) && double.IsFinite(y)) { xs.Add(x); ys.Add(y); }
        return new ChartSeries(yKey, xs, ys);
    }

    /// <summary>Reads numeric fields of JSON-lines records, flattening one level of nesting as "a.b".
    /// Lines that do not parse (a line cut by a kill) are skipped.</summary>
    internal static List<Dictionary<string, double>> ReadJsonLines(string path)
    {
        var rows = new List<Dictionary<string, double>>();
        if (!File.Exists(path)) return rows;
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(fs);
        string? line;
        while ((line = reader.ReadLine()) != null)
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            try
            {
                using var doc = JsonDocument.Parse(line);
                var row = new Dictionary<string, double>();
                Flatten(doc.RootElement, "", row);
                rows.Add(row);
            }
            catch (JsonException) { }
        }
        return rows;
    }

    private static void Flatten(JsonElement e, string prefix, Dictionary<string, double> into)
    {
        foreach (var p in e.EnumerateObject())
        {
            var key = prefix.Length == 0 ? p.Name : prefix + "." + p.Name;
            if (p.Value.ValueKind == JsonValueKind.Number) into[key] = p.Value.GetDouble();
            else if (p.Value.ValueKind == JsonValueKind.Object && prefix.Length == 0) Flatten(p.Value, key, into);
        }
    }
}
