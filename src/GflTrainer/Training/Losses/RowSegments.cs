using static TorchSharp.torch;

namespace GflTrainer.Training.Losses;

/// <summary>Consecutive runs of rows (the FPN levels of a level-major batch, <see cref="LevelRows"/>) for the fused
/// losses that compute every level in one pass and still return the reference's per-level values.</summary>
internal static class RowSegments
{
    /// <summary>(S,) the sum of each run of <paramref name="perRow"/> (R,).</summary>
    public static Tensor Sum(Tensor perRow, long[] segments)
    {
        if (segments.Length == 1) return perRow.sum().reshape(1);
        var sums = new Tensor[segments.Length];
        long start = 0;
        for (int i = 0; i < segments.Length; i++)
        {
            using var run = perRow.narrow(0, start, segments[i]);
            sums[i] = run.sum();
            start += segments[i];
        }
        var result = stack(sums, 0);
        foreach (var t in sums) t.Dispose();
        return result;
    }

    /// <summary>(R,) each row's value of its run: the backward of <see cref="Sum"/> for the incoming (S,) gradient.</summary>
    public static Tensor Expand(Tensor perSegment, long[] segments) =>
        segments.Length == 1 ? perSegment.reshape(1)
            : cat(segments.Select((n, i) => perSegment[i].reshape(1).expand(n)).ToList(), 0);
}
