using static TorchSharp.torch;

namespace GflTrainer.Runtime.Distributed;

/// <summary>How the collectives reduce a list of tensors (the gradients): in buckets of consecutive same-type tensors of
/// at most <see cref="MaxBytes"/> (DDP's default bucket_cap_mb 25; a larger tensor is a bucket alone), each packed into
/// one contiguous buffer, reduced in place by the engine and copied back: one call per bucket instead of one per
/// parameter, and one bucket of extra memory.</summary>
internal static class GradientBuckets
{
    public const long MaxBytes = 25L << 20;

    /// <param name="device">where the packed buffer lives (host memory for MPI, the GPU for NCCL).</param>
    /// <param name="reduceInPlace">the engine's reduction of one packed, contiguous buffer (the mean over the ranks).</param>
    public static void ReduceEach(IReadOnlyList<Tensor> tensors, Device device, Action<Tensor> reduceInPlace)
    {
        int start = 0;
        while (start < tensors.Count)
        {
            var t = tensors[start];
            if (t.is_contiguous() && t.device.ToString() == device.ToString())
            {
                // Already one packed buffer where the engine works (the optimizer's flat gradients): reduced in place,
                // in bucket-sized slices, without a copy.
                using var chunkScope = NewDisposeScope();
                var all = t.detach().view(-1);
                long per = Math.Max(1, MaxBytes / t.element_size());
                for (long off = 0; off < all.numel(); off += per)
                    reduceInPlace(all.narrow(0, off, Math.Min(per, all.numel() - off)));
                start++;
                continue;
            }
            var dtype = tensors[start].dtype;
            long bytes = 0;
            int end = start;
            while (end < tensors.Count && tensors[end].dtype == dtype && (end == start || bytes + Bytes(tensors[end]) <= MaxBytes))
                bytes += Bytes(tensors[end++]);
            using var scope = NewDisposeScope();
            var flat = cat(Enumerable.Range(start, end - start).Select(i => tensors[i].detach().reshape(-1).to(device)).ToList());
            reduceInPlace(flat);
            long offset = 0;
            for (int i = start; i < end; i++)
            {
                long n = tensors[i].numel();
                tensors[i].copy_(flat.narrow(0, offset, n).view_as(tensors[i]));
                offset += n;
            }
            start = end;
        }
    }

    static long Bytes(Tensor t) => t.numel() * t.element_size();
}
