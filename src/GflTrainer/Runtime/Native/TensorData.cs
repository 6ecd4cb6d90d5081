using System.Runtime.InteropServices;
using TorchSharp;

namespace GflTrainer.Runtime.Native;

/// <summary>The address of a tensor's first element on its device (<c>Tensor.data_ptr()</c>), which TorchSharp 0.107
/// does not expose: LibTorchSharp's own <c>THSTensor_data</c> export, called on the tensor's native handle. What the
/// NCCL calls take for CUDA tensors.</summary>
internal static unsafe class TensorData
{
    static readonly Lazy<nint> Export = new(() =>
    {
        _ = torch.get_num_threads();   // TorchSharp has loaded LibTorchSharp
        var (path, _) = LibtorchLibrary.MappedLibrary("libLibTorchSharp.so");
        if (path is not null && NativeLibrary.TryLoad(path, out var lib) && NativeLibrary.TryGetExport(lib, "THSTensor_data", out var f)) return f;
        throw new GflRuntimeException("libLibTorchSharp.so (THSTensor_data) not found among the loaded libraries");
    });

    /// <summary>Address of the first element of <paramref name="t"/> (contiguous tensors only: the callers pass whole
    /// buffers).</summary>
    public static nint Pointer(torch.Tensor t)
    {
        if (!t.is_contiguous()) throw new ArgumentException("tensor must be contiguous", nameof(t));
        return FirstElement(t);
    }

    /// <summary>Address of the element at index 0 of <paramref name="t"/>, whatever its strides (e.g. to tell whether a
    /// channels_last view starts where a buffer slice does).</summary>
    public static nint FirstElement(torch.Tensor t) => ((delegate* unmanaged<nint, nint>)Export.Value)(t.Handle);
}
