namespace GflTrainer.Data;

/// <summary>The random stream of one sample, a pure function of (seed, epoch, dataset index): augmentation is the
/// same whatever the worker count, timing or resume point. SplitMix64 (Steele et al. 2014) mixes the three numbers
/// into the seed of a <see cref="Random"/> (whose seeded algorithm is fixed across .NET versions).</summary>
internal static class SampleRng
{
    public static Random For(long seed, int epoch, int index) =>
        new((int)(Mix(Mix(Mix((ulong)seed) ^ (ulong)epoch) ^ (ulong)index) & 0x7FFFFFFF));

    /// <summary>The stream for epoch-level decisions (shuffling): index −1.</summary>
    public static Random ForEpoch(long seed, int epoch) => For(seed, epoch, -1);

    static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
