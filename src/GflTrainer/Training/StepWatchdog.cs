using System.Diagnostics;
using System.Text;
using GflTrainer.Runtime;
using Serilog;

namespace GflTrainer.Training;

/// <summary>Notices a training iteration that no longer progresses (a decode blocked on a stalled network file
/// system, a kernel or collective that never returns) and ends the run instead of letting it hang until the
/// scheduler's time limit. The loop marks where it is (<see cref="Enter"/>) and when an iteration is done
/// (<see cref="Complete"/>); a background thread compares the running iteration's age with
/// max(factor x median of the last iterations, min_seconds) and, once, hands a report (loop phase, what the loader
/// is still decoding, every OS thread's kernel state and managed stack) to <c>onHang</c>. Checkpoints are not timed (<see cref="Pause"/>);
/// evaluation batches are, against min_seconds (<see cref="Progress"/>).</summary>
internal sealed class StepWatchdog : IDisposable
{
    /// <summary>Iterations needed before the median counts; before that only min_seconds applies.</summary>
    public const int WarmupIterations = 5;
    const int Window = 100;

    readonly double _factor, _minSeconds;
    readonly Func<string> _activity;
    readonly Action<HangReport> _onHang;
    readonly ILogger _log;
    readonly Queue<double> _recent = new();
    readonly Thread _thread;
    readonly object _gate = new();
    readonly CancellationTokenSource _stop = new();
    readonly ManualResetEventSlim _never = new(false);
    readonly Stopwatch _clock = Stopwatch.StartNew();
    double _median = double.NaN;
    double? _startedAt;
    string _phase = "";
    long _iteration;
    bool _fired;
    bool _betweenIterations;

    /// <param name="activity">what the data pipeline is doing (files being decoded and for how long).</param>
    /// <param name="onHang">called once, on the watchdog thread, when an iteration overruns.</param>
    /// <param name="pollSeconds">how often the limit is checked (tests: small).</param>
    public StepWatchdog(double factor, double minSeconds, Func<string> activity, Action<HangReport> onHang, ILogger log, double pollSeconds = 1)
    {
        _factor = factor; _minSeconds = minSeconds; _activity = activity; _onHang = onHang; _log = log;
        _thread = new Thread(() => Watch(TimeSpan.FromSeconds(pollSeconds))) { IsBackground = true, Name = "gfl-watchdog" };
        _thread.Start();
    }

    /// <summary>The loop is now in <paramref name="phase"/> of 1-based <paramref name="iteration"/>; the first phase of an
    /// iteration starts its clock.</summary>
    public void Enter(string phase, long iteration)
    {
        // Once a hang was reported the run is being stopped (and `last` may be being written from the watchdog thread):
        // a loop that wakes up late must not go on changing the weights.
        if (Volatile.Read(ref _fired)) _never.Wait();
        lock (_gate)
        {
            if (_startedAt is null || iteration != _iteration || _betweenIterations) _startedAt = _clock.Elapsed.TotalSeconds;
            _phase = phase; _iteration = iteration; _betweenIterations = false;
        }
    }

    /// <summary>The current iteration finished; its duration joins the median.</summary>
    public void Complete()
    {
        if (Volatile.Read(ref _fired)) _never.Wait();
        lock (_gate)
        {
            if (_startedAt is { } start)
            {
                _recent.Enqueue(_clock.Elapsed.TotalSeconds - start);
                if (_recent.Count > Window) _recent.Dequeue();
                if (_recent.Count >= WarmupIterations) _median = Median(_recent);
            }
            _startedAt = null;
        }
    }

    /// <summary>Outside an iteration (checkpoint, plots): nothing is timed until the next <see cref="Enter"/> or
    /// <see cref="Progress"/>.</summary>
    public void Pause() { lock (_gate) _startedAt = null; }

    /// <summary>A phase after <paramref name="iterationsDone"/> iterations made progress (an evaluation batch done, or
    /// started): the clock restarts, and the limit is min_seconds alone, since its steps are not comparable with
    /// training iterations.</summary>
    public void Progress(string phase, long iterationsDone)
    {
        if (Volatile.Read(ref _fired)) _never.Wait();
        lock (_gate)
        {
            _startedAt = _clock.Elapsed.TotalSeconds;
            _phase = phase; _iteration = iterationsDone; _betweenIterations = true;
        }
    }

    /// <summary>The limit an iteration may take now, in seconds.</summary>
    public double LimitSeconds { get { lock (_gate) return Limit(); } }

    double Limit() => double.IsNaN(_median) || _betweenIterations ? _minSeconds : Math.Max(_factor * _median, _minSeconds);

    void Watch(TimeSpan poll)
    {
        while (!_stop.Token.WaitHandle.WaitOne(poll))
        {
            HangReport? report = null;
            lock (_gate)
            {
                if (_fired || _startedAt is not { } start) continue;
                double age = _clock.Elapsed.TotalSeconds - start, limit = Limit();
                if (age <= limit) continue;
                _fired = true;
                report = new HangReport(_iteration, _phase, age, _median, limit, "", _betweenIterations);
            }
            var text = new StringBuilder();
            text.Append(report.BetweenIterations
                ? $"phase '{report.Phase}' after iteration {report.Iteration} made no progress for {report.Seconds:F0} s " +
                  $"(limit {report.LimitSeconds:F0} s = min_seconds)"
                : $"iteration {report.Iteration} made no progress for {report.Seconds:F0} s in phase '{report.Phase}' " +
                  $"(limit {report.LimitSeconds:F0} s = max({_factor} x median iteration " +
                  $"{(double.IsNaN(report.MedianSeconds) ? "n/a" : $"{report.MedianSeconds:F2} s")}, {_minSeconds} s))");
            var activity = _activity();
            if (!string.IsNullOrEmpty(activity)) text.Append('\n').Append(activity);
            text.Append($"\nthreads of pid {Environment.ProcessId} (kernel view):");
            foreach (var line in ThreadReport.Lines()) text.Append("\n  ").Append(line);
            text.Append("\nmanaged stacks:");
            foreach (var line in ManagedStacks.OfThisProcess(TimeSpan.FromSeconds(60))) text.Append("\n  ").Append(line);
            try { _onHang(report with { Details = text.ToString() }); }
            catch (Exception e) { _log.Error(e, "watchdog: handling the hang failed"); }
        }
    }

    static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        int n = sorted.Length;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }

    public void Dispose()
    {
        _stop.Cancel();
        if (Thread.CurrentThread != _thread) _thread.Join();
        _stop.Dispose();
    }
}

/// <summary>A hung iteration: where the loop was, for how long, against which limit; <see cref="Details"/> is the
/// text for the log (loader activity, thread states).</summary>
/// <param name="BetweenIterations">the hang is in a phase reported through <see cref="StepWatchdog.Progress"/>
/// (evaluation), after iteration <paramref name="Iteration"/>.</param>
internal sealed record HangReport(long Iteration, string Phase, double Seconds, double MedianSeconds, double LimitSeconds, string Details,
    bool BetweenIterations = false);
