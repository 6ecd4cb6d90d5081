using GflTrainer.Runtime;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Runtime;

/// <summary>The per-device constants that replaced tensors made from .NET arrays inside the step (each one a
/// host-to-device copy that waits for a GPU), and the host-to-device upload on the CPU.</summary>
public sealed class DeviceConstantTests
{
    /// <summary>Made once per device and dtype (the same tensor every call, from any thread), with the values a float
    /// array given to <c>tensor</c> and cast had, and not released by a caller's dispose scope.</summary>
    [Fact]
    public void A_constant_is_made_once_per_dtype_with_the_values_of_the_array_it_replaced()
    {
        var c = new DeviceConstant([0.1, 0.1, 0.2, 0.2]);
        Tensor first;
        using (NewDisposeScope())
        {
            first = c.On(CPU);
            using var expected = tensor(new[] { 0.1f, 0.1f, 0.2f, 0.2f });
            Assert.True(first.equal(expected).all().item<bool>());
        }
        Assert.False(first.IsInvalid);   // the scope above did not release it
        Assert.Same(first, c.On(CPU));
        var fromThreads = Enumerable.Range(0, 4).Select(_ => Task.Run(() => c.On(CPU))).Select(t => t.Result).ToList();
        Assert.All(fromThreads, t => Assert.Same(first, t));
        var half = c.On(CPU, ScalarType.Float16);
        Assert.NotSame(first, half);
        Assert.Equal(ScalarType.Float16, half.dtype);
        using var expectedHalf = tensor(new[] { 0.1f, 0.1f, 0.2f, 0.2f }).to(ScalarType.Float16);
        Assert.True(half.equal(expectedHalf).all().item<bool>());
    }

    /// <summary>On the CPU an upload is the tensor itself: nothing is copied.</summary>
    [Fact]
    public void Upload_to_the_cpu_is_the_tensor_itself()
    {
        using var t = arange(6).reshape(2, 3);
        Assert.Same(t, HostToDevice.Upload(t, CPU));
    }
}
