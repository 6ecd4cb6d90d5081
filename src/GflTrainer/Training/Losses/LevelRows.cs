using GflTrainer.Training.Targets;
using static TorchSharp.torch;

namespace GflTrainer.Training.Losses;

/// <summary>
/// A batch's head outputs and targets as one level-major row set (level, image, location, anchor): the concatenation of
/// the per-level inputs mmdetection's <c>loss_by_feat_single</c> sees, so a dense head's loss runs as one computation
/// over all FPN levels (a few large kernels and one <c>nonzero</c> instead of a loop of small ones; issue 21) and still
/// reports the reference's per-level values: a level's rows are a contiguous range known from the shapes, and sums
/// over the positives go through a (levels x positives) mask, so neither needs a device-to-host read.
/// </summary>
internal sealed class LevelRows
{
    private readonly GflTargets _targets;

    public LevelRows(GflTargets targets, long batch)
    {
        _targets = targets;
        Batch = batch;
        RowsPerLevel = targets.AnchorsPerLevel.Select(a => batch * a).ToArray();
        var device = targets.Labels.device;
        RowLevel = cat(Enumerable.Range(0, Levels).Select(l => full(RowsPerLevel[l], l, dtype: int64, device: device)).ToList(), 0);
        Labels = Rows(targets.Labels).reshape(-1);
        LabelWeights = Rows(targets.LabelWeights).reshape(-1);
        BoxTargets = Rows(targets.BoxTargets).reshape(-1, 4);
        Anchors = Rows(targets.Anchors.unsqueeze(0).expand(batch, -1, -1)).reshape(-1, 4);
    }

    public long Batch { get; }

    public int Levels => RowsPerLevel.Length;

    /// <summary>N·A_l: the rows of each level.</summary>
    public long[] RowsPerLevel { get; }

    /// <summary>(rows,) int64 level of each row.</summary>
    public Tensor RowLevel { get; }

    /// <summary>(rows,) int64 assigned class, numClasses for background.</summary>
    public Tensor Labels { get; }

    /// <summary>(rows,) float32 classification weight.</summary>
    public Tensor LabelWeights { get; }

    /// <summary>(rows, 4) assigned gt box in pixels.</summary>
    public Tensor BoxTargets { get; }

    /// <summary>(rows, 4) the row's anchor in pixels.</summary>
    public Tensor Anchors { get; }

    /// <summary>Per-level (N, K, h, w) head outputs as (rows, K / anchors per location): the reference's
    /// <c>permute(0, 2, 3, 1).reshape(-1, channels)</c> of each level, concatenated.</summary>
    public static Tensor OfOutputs(IReadOnlyList<Tensor> perLevel, long channels) =>
        cat(perLevel.Select(t => t.permute(0, 2, 3, 1).reshape(-1, channels)).ToList(), 0);

    /// <summary>Indices of the positive rows (label in 0..numClasses−1), ascending: found on the host with targets built
    /// ahead (<see cref="HostTargets"/>), else one <c>nonzero</c>, the loss's one host sync.</summary>
    public Tensor Positives(int numClasses) => _targets.PositiveRows ?? Foreground(Labels, numClasses);

    /// <summary>Rows whose label is a class (0..C−1), ascending; C is background. One <c>nonzero</c>: a host sync on a GPU.</summary>
    public static Tensor Foreground(Tensor labels, long numClasses) => ((labels >= 0) & (labels < numClasses)).nonzero().squeeze(1);

    /// <summary>Level l's rows of a row-aligned tensor.</summary>
    public Tensor OfLevel(Tensor rows, int level)
    {
        long start = 0;
        for (int l = 0; l < level; l++) start += RowsPerLevel[l];
        return rows.narrow(0, start, RowsPerLevel[level]);
    }

    /// <summary>(L, P) 0/1 mask of each positive's level, for <see cref="SumOverPositives"/>; a pad of positives padded to a
    /// capacity (<see cref="GflTargets.PositiveMask"/>) is 0 on every level, so it adds 0 to every sum and gets no gradient.</summary>
    public Tensor LevelMask(Tensor positives, ScalarType dtype)
    {
        var mask = (RowLevel.index_select(0, positives).unsqueeze(0) == arange(Levels, dtype: int64, device: positives.device).unsqueeze(1)).to(dtype);
        if (_targets.PositiveMask is not { } real) return mask;
        if (real.shape[0] != positives.shape[0])
            throw new ArgumentException($"{positives.shape[0]} positives for a pad mask of {real.shape[0]}: not the targets' own rows", nameof(positives));
        return mask.mul_(real.to(dtype).unsqueeze(0));
    }

    /// <summary>(L,) Σ of a (P,) per-positive value within each level, through <paramref name="levelMask"/>.</summary>
    public static Tensor SumOverPositives(Tensor levelMask, Tensor values) => (levelMask * values.unsqueeze(0)).sum(1);

    /// <summary>A row-aligned (rows,) tensor as the per-image (N, A) layout of the targets.</summary>
    public Tensor ToImageMajor(Tensor rows) =>
        cat(Enumerable.Range(0, Levels).Select(l => OfLevel(rows, l).reshape(Batch, _targets.AnchorsPerLevel[l])).ToList(), 1);

    // (N, A, ...) per-image -> (rows, ...) level-major.
    private Tensor Rows(Tensor perImage)
    {
        var parts = new List<Tensor>(Levels);
        long offset = 0;
        foreach (var count in _targets.AnchorsPerLevel)
        {
            var part = perImage.narrow(1, offset, count);
            parts.Add(part.reshape(new[] { -1L }.Concat(part.shape.Skip(2)).ToArray()));
            offset += count;
        }
        return cat(parts, 0);
    }
}
