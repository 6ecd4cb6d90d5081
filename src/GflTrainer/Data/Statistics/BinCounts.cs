namespace GflTrainer.Data.Statistics;

/// <summary>A histogram as numbers: <see cref="Edges"/> (n + 1, ascending) and <see cref="Counts"/> (n). Bin i holds
/// values in [Edges[i], Edges[i + 1]); the outer bins also hold everything beyond them, so the counts always add up to
/// the number of values (a histogram that silently loses the outliers would misreport the data set).</summary>
public sealed record BinCounts(IReadOnlyList<double> Edges, IReadOnlyList<long> Counts)
{
    public long Total => Counts.Sum();

    public static BinCounts Of(IEnumerable<double> values, IReadOnlyList<double> edges)
    {
        if (edges.Count < 2) throw new ArgumentException("a histogram needs at least two edges", nameof(edges));
        var counts = new long[edges.Count - 1];
        var upper = edges.Skip(1).ToArray();
        foreach (var v in values)
        {
            // First upper edge above v = the bin; values at or above the last edge go to the last bin.
            int i = Array.BinarySearch(upper, v);
            i = i >= 0 ? i + 1 : ~i;
            counts[Math.Min(i, counts.Length - 1)]++;
        }
        return new BinCounts(edges.ToArray(), counts);
    }

    /// <summary>Edges 0, w, 2w, ... up to at least <paramref name="max"/>, with the width w the smallest of
    /// <paramref name="widths"/> that keeps the bins at most <paramref name="maxBins"/> (the last width otherwise).</summary>
    public static double[] LinearEdges(double max, IReadOnlyList<double> widths, int maxBins)
    {
        var width = widths.FirstOrDefault(w => Math.Floor(max / w) + 1 <= maxBins, widths[^1]);
        int bins = Math.Max(1, (int)Math.Floor(max / width) + 1);
        return Enumerable.Range(0, bins + 1).Select(i => i * width).ToArray();
    }
}
