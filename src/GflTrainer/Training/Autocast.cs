using TorchSharp;
using GflTrainer.Runtime.Native;

namespace GflTrainer.Training;

/// <summary>
/// torch.autocast for TorchSharp 0.107, which has none: libtorch exports the autocast state functions
/// (at::autocast::set_autocast_enabled/dtype, increment/decrement_nesting, clear_cache) with plain enum arguments,
/// so we call them by their mangled names. The state is thread-local in libtorch, exactly as in PyTorch, so the
/// region must be entered and left on the same thread (the training thread). Entering/leaving mirrors
/// torch.autocast.__enter__/__exit__: save the previous state, set enabled + dtype, bump the nesting count; on exit
/// clear the cast-weight cache when the outermost region closes, then restore.
/// </summary>
public sealed unsafe class Autocast : IDisposable
{
    // c10::DeviceType and c10::ScalarType are int8_t enums.
    private const sbyte DeviceCpu = 0, DeviceCuda = 1;
    private const sbyte ScalarHalf = 5, ScalarBFloat16 = 15;

    private static readonly Lazy<Api> Native = new(Api.Load);

    private readonly sbyte _device;
    private readonly bool _prevEnabled;
    private readonly sbyte _prevDtype;
    private bool _disposed;

    private Autocast(sbyte device, sbyte dtype)
    {
        var api = Native.Value;
        _device = device;
        _prevEnabled = api.IsEnabled(device) != 0;
        _prevDtype = api.GetDtype(device);
        api.SetEnabled(device, 1);
        api.SetDtype(device, dtype);
        api.IncrementNesting();
    }

    /// <summary>Enters an autocast region for <paramref name="device"/> computing in <paramref name="computeType"/>
    /// (BFloat16 or Float16), or returns null when it is null (full fp32).</summary>
    public static Autocast? Enter(torch.ScalarType? computeType, torch.Device device)
    {
        if (computeType is null) return null;
        if (computeType != torch.ScalarType.BFloat16 && computeType != torch.ScalarType.Float16)
            throw new GflConfigException($"train.amp: autocast computes in bf16 or fp16, not {computeType}") { Key = "train.amp" };
        sbyte dev = device.type switch
        {
            DeviceType.CPU => DeviceCpu,
            DeviceType.CUDA => DeviceCuda,
            _ => throw new GflConfigException($"train.amp: autocast is not supported on device {device}") { Key = "train.amp" },
        };
        return new Autocast(dev, computeType == torch.ScalarType.BFloat16 ? ScalarBFloat16 : ScalarHalf);
    }

    /// <summary>Whether autocast is currently on for the device on this thread (libtorch's thread-local flag).</summary>
    public static bool IsEnabled(torch.Device device) =>
        Native.Value.IsEnabled(device.type == DeviceType.CUDA ? DeviceCuda : DeviceCpu) != 0;

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        var api = Native.Value;
        if (api.DecrementNesting() == 0) api.ClearCache();
        api.SetEnabled(_device, (byte)(_prevEnabled ? 1 : 0));
        api.SetDtype(_device, _prevDtype);
    }

    private sealed class Api
    {
        public delegate* unmanaged<sbyte, byte, void> SetEnabled;
        public delegate* unmanaged<sbyte, byte> IsEnabled;
        public delegate* unmanaged<sbyte, sbyte, void> SetDtype;
        public delegate* unmanaged<sbyte, sbyte> GetDtype;
        public delegate* unmanaged<long> IncrementNesting;
        public delegate* unmanaged<long> DecrementNesting;
        public delegate* unmanaged<void> ClearCache;

        public static Api Load()
        {
            const string feature = "train.amp (mixed precision unavailable with this libtorch)";
            IntPtr Get(string symbol) => LibtorchLibrary.Export(symbol, feature);
            return new Api
            {
                SetEnabled = (delegate* unmanaged<sbyte, byte, void>)Get("_ZN2at8autocast20set_autocast_enabledEN3c1010DeviceTypeEb"),
                IsEnabled = (delegate* unmanaged<sbyte, byte>)Get("_ZN2at8autocast19is_autocast_enabledEN3c1010DeviceTypeE"),
                SetDtype = (delegate* unmanaged<sbyte, sbyte, void>)Get("_ZN2at8autocast18set_autocast_dtypeEN3c1010DeviceTypeENS1_10ScalarTypeE"),
                GetDtype = (delegate* unmanaged<sbyte, sbyte>)Get("_ZN2at8autocast18get_autocast_dtypeEN3c1010DeviceTypeE"),
                IncrementNesting = (delegate* unmanaged<long>)Get("_ZN2at8autocast17increment_nestingEv"),
                DecrementNesting = (delegate* unmanaged<long>)Get("_ZN2at8autocast17decrement_nestingEv"),
                ClearCache = (delegate* unmanaged<void>)Get("_ZN2at8autocast11clear_cacheEv"),
            };
        }
    }
}
