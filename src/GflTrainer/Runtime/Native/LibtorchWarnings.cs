using Serilog;

namespace GflTrainer.Runtime.Native;

/// <summary>
/// Keeps libtorch's one-time start-up warnings out of the user's console. The one seen in practice: on CPUs NNPACK
/// does not support, the first CPU convolution makes libtorch initialise NNPACK, which fails and prints
/// "[W... NNPACK.cpp:56] Could not initialize NNPACK! Reason: Unsupported hardware." through c10's LOG(WARNING),
/// straight to fd 2 (every <c>gfl predict</c> and <c>gfl eval</c> showed it). <see cref="InitializeQuietly"/>
/// triggers that initialisation early inside a <see cref="NativeStderrCapture"/> window, so the line goes to the log
/// at debug level with an explanation; later convolutions find NNPACK's state already settled (c10::call_once) and
/// print nothing.
/// </summary>
/// <remarks>
/// Not routed: TORCH_WARN warnings, which go through c10::WarningHandler (exported
/// <c>c10::WarningUtils::set_warning_handler</c>). Installing our own handler means handing libtorch a C++ object
/// with a vtable built from C#, tied to libc++/libstdc++ ABI details; not done. Those warnings still reach stderr.
/// </remarks>
public static class LibtorchWarnings
{
    private static readonly object Gate = new();
    private static bool _done;

    /// <summary>Whether <see cref="InitializeQuietly"/> has run in this process.</summary>
    public static bool Initialized { get { lock (Gate) return _done; } }

    /// <summary>Runs libtorch's one-time NNPACK initialisation (<c>at::_ops::_nnpack_available::call()</c>) with fd 2
    /// captured. Idempotent and thread-safe; later calls return at once.</summary>
    public static void InitializeQuietly(ILogger? log = null)
    {
        lock (Gate)
        {
            if (_done) return;
            _done = true;
            log ??= Log.Logger;
            var nnpackAvailable = LibtorchLibrary.Export("_ZN2at4_ops17_nnpack_available4callEv", "NNPACK initialisation");
            bool available = false;
            var lines = NativeStderrCapture.Run(() => available = NnpackAvailable(nnpackAvailable), log);
            if (lines.Any(l => l.Message.Contains("NNPACK", StringComparison.Ordinal)))
                log.Debug("NNPACK is an optional libtorch convolution backend this CPU does not support; libtorch uses " +
                    "its other CPU convolution paths instead, results are unaffected");
            log.Debug("libtorch NNPACK available: {Available}", available);
        }
    }

    private static unsafe bool NnpackAvailable(IntPtr fn) => ((delegate* unmanaged<byte>)fn)() != 0;
}
