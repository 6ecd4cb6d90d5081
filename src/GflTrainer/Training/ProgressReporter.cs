using System.Diagnostics;
using GflTrainer.Training.Losses;
using Serilog;

namespace GflTrainer.Training;

/// <summary>Console progress: on a terminal a live bar (epoch, iteration, ETA, losses, lr, images/s) redrawn in place
/// on stderr; when output is redirected (CI, cron) plain log lines every <c>log_interval</c> iterations.</summary>
internal sealed class ProgressReporter
{
    private readonly ILogger _log;
    private readonly long _totalIters;
    private readonly int _logInterval;
    private readonly TextWriter? _terminal;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private long _startIter = -1;
    private double _emaStep;

    /// <param name="terminal">an interactive terminal to redraw the bar on, or null for log lines only.</param>
    public ProgressReporter(ILogger log, long totalIters, int logInterval, TextWriter? terminal = null)
    {
        _log = log; _terminal = terminal; _totalIters = totalIters; _logInterval = Math.Max(1, logInterval);
    }

    public void Update(int epoch, int epochs, long iterInEpoch, int itersPerEpoch, long iteration, LossScalars s,
        double lr, double stepSeconds, int batchSize)
    {
        if (_startIter < 0) { _startIter = iteration - 1; _clock.Restart(); }
        _emaStep = _emaStep == 0 ? stepSeconds : 0.9 * _emaStep + 0.1 * stepSeconds;
        double perIter = _clock.Elapsed.TotalSeconds / Math.Max(1, iteration - _startIter);
        var eta = TimeSpan.FromSeconds(perIter * (_totalIters - iteration));
        double ips = batchSize / Math.Max(1e-9, _emaStep);
        string text = $"epoch {epoch}/{epochs} iter {iterInEpoch}/{itersPerEpoch} | loss {s.Total:F4} ({Terms(s)}) | lr {lr:G3} | {ips:F1} img/s | eta {Format(eta)}";
        if (_terminal is not null)
        {
            int width = 28;
            int filled = (int)(width * iterInEpoch / Math.Max(1, itersPerEpoch));
            _terminal.Write($"\r[{new string('#', filled)}{new string('.', width - filled)}] {text}\u001b[K");
            if (iteration % _logInterval == 0 || iterInEpoch == itersPerEpoch) { _terminal.Write("\r\u001b[K"); _log.Information("{Text}", text); }
        }
        else if (iteration % _logInterval == 0 || iterInEpoch == itersPerEpoch)
            _log.Information("{Text}", text);
    }

    /// <summary><c>cls 0.1234 bbox 0.5678 dfl 0.2345</c>: each term by its name without the <c>loss_</c> prefix.</summary>
    internal static string Terms(LossScalars s) =>
        string.Join(" ", s.Terms.Select(t => $"{(t.Name.StartsWith("loss_", StringComparison.Ordinal) ? t.Name[5..] : t.Name)} {t.Value:F4}"));

    private static string Format(TimeSpan t) => t.TotalHours >= 1 ? $"{(int)t.TotalHours}h{t.Minutes:D2}m" : $"{t.Minutes}m{t.Seconds:D2}s";
}
