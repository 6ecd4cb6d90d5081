using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using static TorchSharp.torch;

namespace GflTrainer.Runtime;

/// <summary>One timed phase of a profiled step.</summary>
/// <param name="Path">the phase and its parents, <c>/</c>-joined (<c>step/loss/targets</c>).</param>
/// <param name="Step">0-based index of the profiled step.</param>
/// <param name="StartUs">microseconds since the profiler was created.</param>
/// <param name="DurationUs">wall-clock microseconds, device work included (see <see cref="StepProfiler"/>).</param>
/// <param name="Operators">ATen operators not called by another operator during the phase (TorchSharp's calls and
/// autograd's; on a GPU most launch a kernel), when the profiler counts them (<see cref="Native.AtenOpRecorder"/>).</param>
/// <param name="AtenCalls">every operator dispatched during the phase, nested ones included (the host's dispatch work).</param>
public sealed record ProfiledPhase(string Path, int Step, double StartUs, double DurationUs, long? Operators = null, long? AtenCalls = null)
{
    public string Name => Path[(Path.LastIndexOf('/') + 1)..];
}

/// <summary>
/// Where a training step's time goes, phase by phase (forward, targets, losses, the loss read, backward, the
/// gradient all-reduce and check, clipping, the update): the repeatable profile of <c>gfl bench train-step
/// --profile</c>, written as a Chrome trace (chrome://tracing, ui.perfetto.dev).
/// </summary>
/// <remarks>
/// The code marks its phases with <see cref="Phase"/>, which costs one thread-static read when no profiler is active
/// (training, tests). On CUDA the profiler synchronises the device at every phase boundary so that each phase's time
/// holds its own kernels rather than whatever the host happened to wait on: the phases then add up to the step, at
/// the price of the host/device overlap the unprofiled step has (compare the profiled step with <c>median_ms</c>).
/// On the CPU the kernels run on the calling thread and nothing needs synchronising.
/// </remarks>
/// <param name="countOperators">also count the ATen operators of each phase (<see cref="Native.AtenOpRecorder"/>): where
/// the kernels a GPU launches come from. Best-effort: a libtorch without the observer API leaves the counts out
/// (<see cref="OperatorsUnavailable"/>).</param>
public sealed class StepProfiler(Device device, bool countOperators = false)
{
    [ThreadStatic] private static StepProfiler? s_current;
    private bool _countOperators = countOperators;
    private Native.AtenOpRecorder? _operators;

    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly List<ProfiledPhase> _phases = [];
    private readonly Stack<string> _open = new();
    private int _step = -1;

    public IReadOnlyList<ProfiledPhase> Phases => _phases;

    /// <summary>Number of steps begun with <see cref="Step"/>.</summary>
    public int Steps => _step + 1;

    /// <summary>Marks a phase of the step on this thread's active profiler, if any; dispose to end it.</summary>
    public static IDisposable Phase(string name) => s_current is { } p ? p.Begin(name) : NoPhase.Instance;

    /// <summary>Profiles one step on the calling thread: the root phase <c>step</c>, active until disposed.</summary>
    public IDisposable Step()
    {
        if (s_current is not null) throw new InvalidOperationException("a step is already being profiled on this thread");
        _step++;
        s_current = this;
        if (_countOperators)
            try { _operators = Native.AtenOpRecorder.Start(); }
            catch (GflRuntimeException e) { _countOperators = false; OperatorsUnavailable = e.Message; }
        var root = Begin("step");
        return new Ended(() =>
        {
            root.Dispose();
            _operators?.Dispose();
            _operators = null;
            s_current = null;
        });
    }

    /// <summary>Why operators were not counted although asked for, or null.</summary>
    public string? OperatorsUnavailable { get; private set; }

    private IDisposable Begin(string name)
    {
        if (name.Contains('/')) throw new ArgumentException($"phase name '{name}' must not contain '/'", nameof(name));
        Synchronize();
        var path = _open.Count == 0 ? name : _open.Peek() + "/" + name;
        _open.Push(path);
        var start = _clock.Elapsed.TotalMicroseconds;
        var ops = _operators;
        var (ops0, calls0) = ops is null ? (0L, 0L) : (ops.TopLevel, ops.Calls);
        return new Ended(() =>
        {
            Synchronize();
            var end = _clock.Elapsed.TotalMicroseconds;
            if (_open.Peek() != path) throw new InvalidOperationException($"phase {path} ended before {_open.Peek()}");
            _open.Pop();
            _phases.Add(new ProfiledPhase(path, _step, start, end - start, ops?.TopLevel - ops0, ops?.Calls - calls0));
        });
    }

    private void Synchronize()
    {
        if (device.type == DeviceType.CUDA) cuda.synchronize(device);
    }

    /// <summary>Every phase's durations in milliseconds over the profiled steps (one value per step: a phase entered
    /// several times in a step, as the gradient check around the loss read, counts its total), phases in the order they
    /// first began; a phase absent from a step (clipping when not configured) has fewer values.</summary>
    public IReadOnlyList<(string Path, IReadOnlyList<double> Ms)> Durations() =>
        _phases.GroupBy(p => p.Path)
            .OrderBy(g => g.Min(p => (p.Step, p.StartUs)))
            .Select(g => (g.Key, (IReadOnlyList<double>)g.GroupBy(p => p.Step).OrderBy(s => s.Key)
                .Select(s => s.Sum(p => p.DurationUs) / 1000.0).ToList()))
            .ToList();

    /// <summary>Per phase the operators of each profiled step (top-level, all dispatched), in the order of
    /// <see cref="Durations"/>; empty when operators were not counted.</summary>
    public IReadOnlyList<(string Path, IReadOnlyList<long> Operators, IReadOnlyList<long> AtenCalls)> OperatorCounts() =>
        _phases.Where(p => p.Operators is not null).GroupBy(p => p.Path)
            .OrderBy(g => g.Min(p => (p.Step, p.StartUs)))
            .Select(g =>
            {
                var steps = g.GroupBy(p => p.Step).OrderBy(s => s.Key).ToList();
                return (g.Key, (IReadOnlyList<long>)steps.Select(s => s.Sum(p => p.Operators!.Value)).ToList(),
                    (IReadOnlyList<long>)steps.Select(s => s.Sum(p => p.AtenCalls!.Value)).ToList());
            })
            .ToList();

    /// <summary>The Chrome trace event format: one complete ("X") event per phase, one track, the step index in its args.</summary>
    public void WriteTrace(string path, IReadOnlyDictionary<string, string> about)
    {
        var events = new JsonArray();
        foreach (var p in _phases.OrderBy(p => p.StartUs).ThenByDescending(p => p.DurationUs))
            events.Add(new JsonObject
            {
                ["name"] = p.Name, ["cat"] = p.Path, ["ph"] = "X", ["ts"] = Math.Round(p.StartUs, 3), ["dur"] = Math.Round(p.DurationUs, 3),
                ["pid"] = 1, ["tid"] = 1, ["args"] = p.Operators is null
                    ? new JsonObject { ["step"] = p.Step, ["path"] = p.Path }
                    : new JsonObject { ["step"] = p.Step, ["path"] = p.Path, ["operators"] = p.Operators, ["aten_calls"] = p.AtenCalls },
            });
        var other = new JsonObject();
        foreach (var (k, v) in about) other[k] = v;
        var trace = new JsonObject { ["traceEvents"] = events, ["displayTimeUnit"] = "ms", ["otherData"] = other };
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
        File.WriteAllText(path, trace.ToJsonString(new JsonSerializerOptions { WriteIndented = false }));
    }

    private sealed class Ended(Action end) : IDisposable
    {
        private bool _done;

        public void Dispose()
        {
            if (_done) return;
            end();
            _done = true;
        }
    }

    private sealed class NoPhase : IDisposable
    {
        public static readonly NoPhase Instance = new();
        public void Dispose() { }
    }
}
