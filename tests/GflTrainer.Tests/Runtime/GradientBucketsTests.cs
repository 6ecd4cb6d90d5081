using GflTrainer.Runtime.Distributed;
using GflTrainer.Runtime.Native;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Runtime;

/// <summary>How the collectives hand gradients to the engine: separate tensors packed into buckets, the optimizer's
/// flat buffer reduced in place in bucket-sized slices.</summary>
public sealed class GradientBucketsTests
{
    [Fact]
    public void A_flat_buffer_is_reduced_in_place_in_bucket_sized_slices()
    {
        using var scope = NewDisposeScope();
        long n = GradientBuckets.MaxBytes / 4 * 2 + 1000;   // two full slices and a short one
        var flat = arange(n, dtype: float32);
        var seen = new List<(nint Ptr, long Count)>();
        GradientBuckets.ReduceEach([flat], CPU, t => { seen.Add((TensorData.Pointer(t), t.numel())); t.mul_(2); });

        Assert.Equal([GradientBuckets.MaxBytes / 4, GradientBuckets.MaxBytes / 4, 1000], seen.Select(s => s.Count));
        var start = TensorData.Pointer(flat);
        Assert.Equal([start, start + (nint)GradientBuckets.MaxBytes, start + 2 * (nint)GradientBuckets.MaxBytes], seen.Select(s => s.Ptr));
        Assert.True(flat.equal(arange(n, dtype: float32) * 2).all().item<bool>());
    }

    [Fact]
    public void Separate_and_strided_tensors_are_packed_reduced_and_copied_back()
    {
        using var scope = NewDisposeScope();
        var a = ones(3, 4);
        var b = arange(6, dtype: float32).reshape(2, 3).t();   // not contiguous: packed like the others
        var c = full(5, 7f);
        var aPtr = TensorData.Pointer(a);
        var calls = 0;
        GradientBuckets.ReduceEach([b, a, c], CPU, t =>
        {
            calls++;
            Assert.NotEqual(aPtr, TensorData.Pointer(t));
            t.add_(1);
        });
        Assert.True(a.equal(full(3, 4, 2f)).all().item<bool>());
        Assert.True(b.equal(arange(6, dtype: float32).reshape(2, 3).t() + 1).all().item<bool>());
        Assert.True(c.equal(full(5, 8f)).all().item<bool>());
        Assert.True(calls >= 1);
    }
}
