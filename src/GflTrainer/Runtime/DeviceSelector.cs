using TorchSharp;

namespace GflTrainer.Runtime;

/// <summary>Parses the global <c>--device</c> value: auto | cpu | cuda | cuda:N.</summary>
public static class DeviceSelector
{
    /// <param name="log">receives libtorch's start-up warnings when this is the first use of libtorch.</param>
    public static torch.Device Resolve(string? spec, Serilog.ILogger? log = null)
    {
        Native.TorchRuntime.EnsureInitialized(log);   // before the first tensor operation
        spec = string.IsNullOrWhiteSpace(spec) ? "auto" : spec.Trim().ToLowerInvariant();
        if (spec == "auto")
            return torch.cuda.is_available() ? new torch.Device(DeviceType.CUDA, 0) : torch.CPU;
        if (spec == "cpu") return torch.CPU;
        if (spec == "cuda" || spec.StartsWith("cuda:"))
        {
            if (!torch.cuda.is_available())
                throw new GflConfigException($"--device {spec}: CUDA is not available in this build/machine " +
                    "(build with -p:GflCuda=true on a GPU box; see README 'GPU set-up')") { Key = "--device" };
            int index = 0;
            if (spec.Length > 4 && !int.TryParse(spec.AsSpan(5), out index))
                throw new GflConfigException($"--device {spec}: expected cuda:N with N an integer") { Key = "--device" };
            int count = torch.cuda.device_count();
            if (index < 0 || index >= count)
                throw new GflConfigException($"--device {spec}: only {count} CUDA device(s) visible (0..{count - 1})") { Key = "--device" };
            return new torch.Device(DeviceType.CUDA, index);
        }
        throw new GflConfigException($"--device {spec}: expected auto, cpu, cuda or cuda:N") { Key = "--device" };
    }
}
