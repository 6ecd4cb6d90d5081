using System.Collections.Concurrent;
using TorchSharp;
using static TorchSharp.torch;

namespace GflTrainer.Runtime;

/// <summary>
/// A small constant tensor (the FPN strides, a box coder's means and stds) made once per device and dtype and kept for
/// the process. Made from a .NET array at every use, it was a host-to-device copy in each step, and such a copy waits
/// for the device (<see cref="HostToDevice"/>). Thread-safe: the target builders run on loader threads.
/// </summary>
internal sealed class DeviceConstant(IReadOnlyList<double> values)
{
    readonly float[] _values = values.Select(v => (float)v).ToArray();
    // Lazy: GetOrAdd may run its factory on two threads at once; only one tensor is ever made per key.
    readonly ConcurrentDictionary<(string Device, ScalarType Type), Lazy<Tensor>> _made = new();

    /// <summary>The values as a 1-D tensor: float32 first, then cast to <paramref name="dtype"/>, as a float array given
    /// to <c>tensor</c> and converted would be. Owned by this object: use it, never dispose it.</summary>
    public Tensor On(Device device, ScalarType dtype = ScalarType.Float32) =>
        _made.GetOrAdd((device.ToString(), dtype), _ => new Lazy<Tensor>(() =>
        {
            using var host = tensor(_values);
            using var typed = host.to(dtype);
            return typed.to(device).DetachFromDisposeScope();
        })).Value;
}
