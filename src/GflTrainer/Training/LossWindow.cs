using GflTrainer.Training.Losses;

namespace GflTrainer.Training;

/// <summary>Averages of the loss terms and timings since the last log line (mmdetection logs interval means).</summary>
internal sealed class LossWindow
{
    private double _cls, _box, _dfl, _total, _time, _data;
    private int _n;

    public void Add(LossScalars s, double time, double dataTime)
    {
        _cls += s.Cls; _box += s.Box; _dfl += s.Dfl; _total += s.Total; _time += time; _data += dataTime; _n++;
    }

    public Summary Drain()
    {
        int n = Math.Max(1, _n);
        var r = new Summary(_cls / n, _box / n, _dfl / n, _total / n, _time / n, _data / n);
        _cls = _box = _dfl = _total = _time = _data = 0; _n = 0;
        return r;
    }

    public sealed record Summary(double Cls, double Box, double Dfl, double Total, double Time, double DataTime);
}
