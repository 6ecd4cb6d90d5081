using System.Collections.Concurrent;

namespace GflTrainer.Data;

/// <summary>Exact-length byte arrays for decoded and resized images, reused across images. A fresh 1-3 MB array per
/// image costs the loader page faults on every image (the GC hands large-object memory back and maps it in again:
/// ~100 minor faults, ~0.5 ms per array measured), as much as the vectorised resize itself. Retention is bounded by
/// <see cref="MaxRetainedBytes"/>; past it the arrays of other sizes are dropped first, so a dataset with many image
/// sizes degrades to plain allocation, never to unbounded memory. Returning an array is optional (an array that is
/// not returned is simply collected); returning one still in use is a bug.</summary>
internal static class PixelBufferPool
{
    public const long MaxRetainedBytes = 256L << 20;
    static readonly ConcurrentDictionary<int, ConcurrentBag<byte[]>> Free = new();
    static long _retained;

    public static long RetainedBytes => Interlocked.Read(ref _retained);

    /// <summary>Drops every retained array (tests; or after a loader is done for good).</summary>
    public static void Clear()
    {
        foreach (var (length, bag) in Free)
            while (bag.TryTake(out _)) Interlocked.Add(ref _retained, -length);
    }

    /// <summary>An array of exactly <paramref name="length"/> bytes with undefined contents.</summary>
    public static byte[] Rent(int length)
    {
        if (Free.TryGetValue(length, out var bag) && bag.TryTake(out var array))
        {
            Interlocked.Add(ref _retained, -length);
            return array;
        }
        return GC.AllocateUninitializedArray<byte>(length);
    }

    public static void Return(byte[] array)
    {
        if (array.Length < 64 << 10) return;   // small arrays are cheap to allocate
        long retained = Interlocked.Add(ref _retained, array.Length);
        if (retained > MaxRetainedBytes)
        {
            foreach (var (length, bag) in Free)
            {
                if (length == array.Length) continue;
                while (Interlocked.Read(ref _retained) > MaxRetainedBytes && bag.TryTake(out _)) Interlocked.Add(ref _retained, -length);
            }
            if (Interlocked.Read(ref _retained) > MaxRetainedBytes)
            {
                Interlocked.Add(ref _retained, -array.Length);
                return;
            }
        }
        Free.GetOrAdd(array.Length, _ => new ConcurrentBag<byte[]>()).Add(array);
    }
}
