using System.Runtime.CompilerServices;
using GflTrainer.Runtime;

namespace GflTrainer.Tests.Support;

internal static class NativeSetup
{
    /// <summary>Same native settings as the gfl executable, before any test touches TorchSharp; the CPU workaround
    /// (and, under GFL_CPUID_RECORDING, the simulation of another machine's caches) before any oneDNN primitive.</summary>
    [ModuleInitializer]
    internal static void Init()
    {
        NativeEnvironment.Prepare();
        GflTrainer.Runtime.Native.TorchRuntime.EnsureInitialized();
    }
}
