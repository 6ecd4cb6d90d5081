using System.Runtime.InteropServices;
using TorchSharp;

namespace GflTrainer.Native;

/// <summary>
/// The loaded libtorch_cpu library, for calling libtorch functions that TorchSharp 0.107 does not wrap by their
/// exported (mangled C++) names: autocast (<see cref="Training.Autocast"/>) and NNPACK's one-time initialisation
/// (<see cref="LibtorchWarnings"/>). The handle is the one TorchSharp already loaded (same file, same process).
/// </summary>
internal static class LibtorchLibrary
{
    private static readonly Lazy<IntPtr> Handle = new(Load);

    /// <summary>The address of <paramref name="symbol"/>; <paramref name="feature"/> names what needs it in the error
    /// (e.g. "train.amp: ... mixed precision unavailable").</summary>
    public static IntPtr Export(string symbol, string feature)
    {
        var lib = Handle.Value;
        if (lib == IntPtr.Zero)
            throw new GflRuntimeException($"{feature}: libtorch_cpu not found next to TorchSharp.dll");
        return NativeLibrary.TryGetExport(lib, symbol, out var f) ? f
            : throw new GflRuntimeException($"{feature}: libtorch does not export {symbol}");
    }

    private static IntPtr Load()
    {
        _ = torch.get_num_threads(); // make TorchSharp load libtorch first
        var dir = Path.GetDirectoryName(typeof(torch).Assembly.Location)!;
        foreach (var name in new[] { "libtorch_cpu.so", "libtorch_cpu.dylib", "torch_cpu.dll" })
        {
            var p = Path.Combine(dir, name);
            if (File.Exists(p) && NativeLibrary.TryLoad(p, out var lib)) return lib;
            if (NativeLibrary.TryLoad(name, out lib)) return lib;
        }
        return IntPtr.Zero;
    }
}
