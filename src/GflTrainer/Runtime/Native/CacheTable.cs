namespace GflTrainer.Runtime.Native;

/// <summary>
/// The data-cache table oneDNN works from: the number of data-cache levels, each level's size in bytes and the number
/// of cores sharing it. oneDNN's blocking heuristics use size / sharing (<c>platform::get_per_core_cache_size</c>),
/// and fall back to fixed guesses (32 KiB, 512 KiB, 1 MiB) only when <see cref="Levels"/> is 0.
/// </summary>
public sealed record CacheTable(uint Levels, uint[] Sizes, uint[] CoresSharing)
{
    /// <summary>oneDNN 3.7's guesses when no cache levels are known (src/cpu/platform.cpp get_per_core_cache_size).</summary>
    public static readonly uint[] OneDnnGuessPerCore = [32u * 1024, 512u * 1024, 1024u * 1024];

    /// <summary>Below this no real data cache exists (the smallest L1d of an x86-64 processor is 16 KiB); a smaller
    /// size is an artefact of zeroed CPUID leaves.</summary>
    public const uint SmallestPlausibleSize = 4 * 1024;

    public uint PerCore(int level) =>
        level >= 1 && level <= Levels ? Sizes[level - 1] / Math.Max(1u, CoresSharing[level - 1])
            : Levels == 0 && level is >= 1 and <= 3 ? OneDnnGuessPerCore[level - 1] : 0;

    /// <summary>The levels whose size no real cache has (see <see cref="SmallestPlausibleSize"/>).</summary>
    public IEnumerable<int> ImplausibleLevels() =>
        Enumerable.Range(1, (int)Levels).Where(l => Sizes[l - 1] < SmallestPlausibleSize);

    public override string ToString() => Levels == 0
        ? "no levels (oneDNN uses its guesses 32 KiB / 512 KiB / 1 MiB per core)"
        : string.Join(", ", Enumerable.Range(1, (int)Levels).Select(l =>
            $"L{l} {Bytes.Format(Sizes[l - 1])}" + (CoresSharing[l - 1] > 1 ? $" shared by {CoresSharing[l - 1]}" : "")));

    public bool SameAs(CacheTable other) =>
        Levels == other.Levels && Sizes.AsSpan(0, (int)Levels).SequenceEqual(other.Sizes.AsSpan(0, (int)other.Levels))
        && CoresSharing.AsSpan(0, (int)Levels).SequenceEqual(other.CoresSharing.AsSpan(0, (int)other.Levels));
}

/// <summary>Sizes as "48 KiB", "2 MiB" or "1 B" for log lines.</summary>
internal static class Bytes
{
    public static string Format(long bytes) => bytes switch
    {
        >= 1L << 20 when bytes % (1L << 20) == 0 => $"{bytes >> 20} MiB",
        >= 1L << 10 when bytes % (1L << 10) == 0 => $"{bytes >> 10} KiB",
        _ => $"{bytes} B",
    };
}
