using System.Runtime.InteropServices;
using TorchSharp;

namespace GflTrainer.Runtime.Native;

/// <summary>
/// The loaded libtorch_cpu library, for calling libtorch functions that TorchSharp 0.107 does not wrap by their
/// exported (mangled C++) names: autocast (<see cref="Training.Autocast"/>), NNPACK's one-time initialisation
/// (<see cref="LibtorchWarnings"/>), the oneDNN switch (<see cref="OneDnnCacheWorkaround"/>), and for reading its
/// non-exported symbols at their load addresses (<see cref="OneDnnCpuTable"/>). The file is the one TorchSharp
/// already loaded (found in /proc/self/maps where there is one: a PyTorch install's libtorch may come from anywhere
/// on the library path).
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

    /// <summary>Path and load base of the mapped libtorch_cpu.so (Linux; null elsewhere or when not mapped).</summary>
    public static (string? Path, nint Base) Mapping()
    {
        _ = torch.get_num_threads(); // make TorchSharp load libtorch first
        return OperatingSystem.IsLinux() ? MappedLibrary("libtorch_cpu.so") : (null, 0);
    }

    /// <summary>Path and load base of a mapped library (its mapping at file offset 0), from /proc/self/maps.</summary>
    internal static (string? Path, nint Base) MappedLibrary(string fileName)
    {
        foreach (var line in File.ReadLines("/proc/self/maps"))
        {
            // start-end perms offset dev inode path (the path may contain spaces)
            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length < 6 || parts[2] != "00000000") continue;
            var path = string.Join(' ', parts[5..]);
            if (Path.GetFileName(path) != fileName) continue;
            return (path, (nint)Convert.ToInt64(parts[0][..parts[0].IndexOf('-')], 16));
        }
        return (null, 0);
    }

    private static IntPtr Load()
    {
        if (Mapping().Path is { } mapped && NativeLibrary.TryLoad(mapped, out var loaded)) return loaded;
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
