namespace GflTrainer.Data;

/// <summary>Which dataset indices form each batch of an epoch, for one rank.
///
/// Training follows mmdetection's GroupSampler / DistributedGroupSampler: images are grouped by aspect ratio
/// (w/h ≥ 1 vs &lt; 1, from the annotation file's width/height) so a batch never mixes landscape and portrait
/// padding; each group is shuffled and padded with its own first indices to a multiple of batch·world, cut into
/// batches, and the batch order is shuffled; rank r takes every world-th batch. All randomness comes from
/// <see cref="SampleRng.ForEpoch"/>, so every rank computes the same plan. Without grouping
/// (<c>data.group_by_aspect_ratio: false</c>, mmdetection without GroupSampler) the whole set is one group, so a batch
/// may mix orientations and pad to the larger extent.
///
/// Evaluation: file order, no padding, rank r takes a contiguous slice, the last batch may be short.</summary>
internal static class GroupBatchSampler
{
    public static IReadOnlyList<int[]> TrainBatches(IReadOnlyList<DatasetEntry> entries, int batchSize, long seed, int epoch,
        int rank = 0, int worldSize = 1, bool shuffle = true, bool groupByAspectRatio = true)
    {
        Validate(batchSize, rank, worldSize);
        var rng = SampleRng.ForEpoch(seed, epoch);
        var chunk = batchSize * worldSize;
        var batches = new List<int[]>();
        var groups = groupByAspectRatio
            ? new[] { false, true }.Select(landscape =>
                Enumerable.Range(0, entries.Count).Where(i => entries[i].Width >= entries[i].Height == landscape).ToArray())
            : [Enumerable.Range(0, entries.Count).ToArray()];
        foreach (var group in groups)
        {
            if (group.Length == 0) continue;
            if (shuffle) Shuffle(group, rng);
            int padded = (group.Length + chunk - 1) / chunk * chunk;
            var full = new int[padded];
            for (int i = 0; i < padded; i++) full[i] = group[i % group.Length];
            for (int i = 0; i < padded; i += batchSize) batches.Add(full[i..(i + batchSize)]);
        }
        // Shuffle whole world-sized blocks of batches so each rank sees the same number of batches per group.
        var blocks = Enumerable.Range(0, batches.Count / worldSize).Select(b => batches.Skip(b * worldSize).Take(worldSize).ToArray()).ToArray();
        if (shuffle) Shuffle(blocks, rng);
        return blocks.Select(block => block[rank]).ToList();
    }

    public static IReadOnlyList<int[]> EvalBatches(int count, int batchSize, int rank = 0, int worldSize = 1)
    {
        Validate(batchSize, rank, worldSize);
        int per = (count + worldSize - 1) / worldSize;
        int start = Math.Min(count, rank * per), end = Math.Min(count, start + per);
        var batches = new List<int[]>();
        for (int i = start; i < end; i += batchSize) batches.Add(Enumerable.Range(i, Math.Min(batchSize, end - i)).ToArray());
        return batches;
    }

    static void Validate(int batchSize, int rank, int worldSize)
    {
        if (batchSize < 1) throw new GflConfigException($"batch size must be >= 1 (got {batchSize})");
        if (worldSize < 1 || rank < 0 || rank >= worldSize) throw new GflConfigException($"rank {rank} is not in world size {worldSize}");
    }

    static void Shuffle<T>(T[] a, Random rng)
    {
        for (int i = a.Length - 1; i > 0; i--)
        {
            int j = rng.Next(i + 1);
            (a[i], a[j]) = (a[j], a[i]);
        }
    }
}
