using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace GflTrainer.Runtime.Native;

/// <summary>
/// Counts the ATen operators dispatched by the calling thread (and by the threads libtorch hands its thread-local state
/// to, such as autograd's device threads), through libtorch's own observer API: <c>at::addThreadLocalCallback</c> with
/// a <c>RecordFunctionCallback</c> for the FUNCTION scope, the hook PyTorch's profiler uses. TorchSharp 0.107 wraps
/// neither, so they are called by their exported names (<see cref="LibtorchLibrary"/>).
/// </summary>
/// <remarks>
/// Why: on a GPU every operator costs host time to dispatch and, for most, a kernel launch, and issue 21's step is
/// bound by exactly that; on the CPU the same count is exact and machine-independent, so tests can hold the step to
/// "no operator that reads the device" and "the same operators for every batch of one shape" (what a CUDA graph
/// replays). A top-level call is one not made by another operator (TorchSharp's, and autograd's in backward); nested
/// calls are the operators a composite one dispatches in turn. One recorder at a time per process (a second <see cref="Start"/> waits): the
/// counts of two would mix in the shared callback.
/// ABI (libtorch 2.10, x86-64 SysV, checked with g++ against the header's layout): RecordFunctionCallback is 40
/// trivially-copyable bytes (start, end, sampling_prob, scopes[10], 3 flags), passed by value on the stack; the start
/// callback returns a std::unique_ptr&lt;ObserverContext&gt; through a hidden result pointer (first argument, returned).
/// </remarks>
internal sealed unsafe class AtenOpRecorder : IDisposable
{
    const string Feature = "operator count";
    const int Scopes = 10;   // at::RecordScope::NUM_SCOPES in libtorch 2.10; FUNCTION is 0

    [StructLayout(LayoutKind.Sequential)]
    struct RecordFunctionCallback
    {
        public nint Start;
        public nint End;
        public double SamplingProb;
        public fixed byte Scopes[10];
        public byte NeedsInputs, NeedsOutputs, NeedsIds;
    }

    // The three entry points' addresses (function pointers cannot be generic arguments).
    static readonly Lazy<(nint Add, nint Remove, nint Name)> Api = new(() =>
        (LibtorchLibrary.Export("_ZN2at22addThreadLocalCallbackENS_22RecordFunctionCallbackE", Feature),
         LibtorchLibrary.Export("_ZN2at14removeCallbackEm", Feature),
         LibtorchLibrary.Export("_ZNK2at14RecordFunction4nameEv", Feature)));

    static readonly SemaphoreSlim OneAtATime = new(1, 1);
    static AtenOpRecorder? s_active;
    [ThreadStatic] static int t_depth;

    ulong _handle;
    readonly bool _names;
    readonly List<string> _sequence = [];
    readonly Dictionary<string, long> _byName = [];
    readonly object _lock = new();
    long _calls, _topLevel;
    bool _disposed;

    readonly int _thread = Environment.CurrentManagedThreadId;

    AtenOpRecorder(bool names) { _names = names; }

    /// <summary>Starts counting the operators this thread dispatches, until <see cref="Dispose"/> (on this thread: the
    /// observer is this thread's).</summary>
    /// <param name="names">also keep the top-level operators' names in order (<see cref="TopLevelSequence"/>) and the calls
    /// per name (<see cref="CallsByName"/>): a string per call, for tests and diagnostics.</param>
    public static AtenOpRecorder Start(bool names = false)
    {
        var api = Api.Value;
        // A second recorder on the same thread would wait for itself.
        if (s_active is { } active && active._thread == Environment.CurrentManagedThreadId)
            throw new InvalidOperationException("an operator recorder is already counting on this thread");
        OneAtATime.Wait();
        try
        {
            var cb = new RecordFunctionCallback
            {
                Start = (nint)(delegate* unmanaged<nint, nint, nint>)&OnStart,
                End = (nint)(delegate* unmanaged<nint, nint, void>)&OnEnd,
                SamplingProb = 1.0,
            };
            cb.Scopes[0] = 1;   // RecordScope::FUNCTION: ATen operators (not autograd nodes or user ranges)
            t_depth = 0;
            var recorder = new AtenOpRecorder(names);
            s_active = recorder;
            recorder._handle = ((delegate* unmanaged<RecordFunctionCallback, ulong>)api.Add)(cb);
            if (recorder._handle == 0) throw new GflRuntimeException($"{Feature}: libtorch refused the observer callback");
            return recorder;
        }
        catch
        {
            s_active = null;
            OneAtATime.Release();
            throw;
        }
    }

    /// <summary>Every operator dispatched, nested calls included.</summary>
    public long Calls => Interlocked.Read(ref _calls);

    /// <summary>The operators not called by another operator: TorchSharp's calls and those autograd's backward makes.</summary>
    public long TopLevel => Interlocked.Read(ref _topLevel);

    /// <summary>The top-level operators' names in call order (with <c>names</c>).</summary>
    public IReadOnlyList<string> TopLevelSequence { get { lock (_lock) return _sequence.ToList(); } }

    /// <summary>Calls per operator name, nested ones included (with <c>names</c>).</summary>
    public IReadOnlyDictionary<string, long> CallsByName() { lock (_lock) return new Dictionary<string, long>(_byName); }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        ((delegate* unmanaged<ulong, void>)Api.Value.Remove)(_handle);
        s_active = null;
        OneAtATime.Release();
    }

    [UnmanagedCallersOnly]
    static nint OnStart(nint result, nint recordFunction)
    {
        *(nint*)result = 0;   // no ObserverContext (a null std::unique_ptr)
        var depth = t_depth++;
        s_active?.Record(recordFunction, depth == 0);
        return result;
    }

    [UnmanagedCallersOnly]
    static void OnEnd(nint recordFunction, nint context)
    {
        if (t_depth > 0) t_depth--;
    }

    void Record(nint recordFunction, bool topLevel)
    {
        Interlocked.Increment(ref _calls);
        if (topLevel) Interlocked.Increment(ref _topLevel);
        if (!_names) return;
        var name = Marshal.PtrToStringUTF8(((delegate* unmanaged<nint, nint>)Api.Value.Name)(recordFunction)) ?? "?";
        lock (_lock)
        {
            if (topLevel) _sequence.Add(name);
            _byName[name] = _byName.GetValueOrDefault(name) + 1;
        }
    }
}
