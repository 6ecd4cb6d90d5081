using GflTrainer.Training.Losses;

namespace GflTrainer.Training;

/// <summary>Averages of the loss terms (by name, in the loss's order) and timings since the last log line
/// (mmdetection logs interval means).</summary>
internal sealed class LossWindow
{
    private readonly List<(string Name, double Sum)> _terms = [];
    private double _total, _time, _data;
    private int _n;

    public void Add(LossScalars s, double time, double dataTime)
    {
        foreach (var term in s.Terms)
        {
            int i = _terms.FindIndex(t => t.Name == term.Name);
            if (i < 0) _terms.Add((term.Name, term.Value));
            else _terms[i] = (term.Name, _terms[i].Sum + term.Value);
        }
        _total += s.Total; _time += time; _data += dataTime; _n++;
    }

    public Summary Drain()
    {
        int n = Math.Max(1, _n);
        var r = new Summary(new LossScalars(_total / n, _terms.Select(t => new LossTerm(t.Name, t.Sum / n)).ToList()), _time / n, _data / n);
        _terms.Clear(); _total = _time = _data = 0; _n = 0;
        return r;
    }

    /// <param name="Losses">mean total and mean of each term.</param>
    /// <param name="Time">mean seconds per step, data wait included.</param>
    /// <param name="DataTime">mean seconds per step spent waiting for the batch.</param>
    public sealed record Summary(LossScalars Losses, double Time, double DataTime);
}
