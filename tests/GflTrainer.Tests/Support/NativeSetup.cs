using System.Runtime.CompilerServices;

namespace GflTrainer.Tests.Support;

internal static class NativeSetup
{
    /// <summary>Same native settings as the gfl executable, before any test touches TorchSharp.</summary>
    [ModuleInitializer]
    internal static void Init() => NativeEnvironment.Prepare();
}
