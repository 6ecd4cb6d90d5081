namespace GflTrainer.Training;

/// <summary>Decay policy after warm-up.</summary>
public enum LrDecay { Step, Cosine }

/// <summary>Learning rate as a pure function of the global iteration, so a resumed run continues exactly
/// (TorchSharp's schedulers keep no state_dict). mmdetection gfl 1x: linear warm-up over 500 iterations from
/// factor 0.001 (lr = base·(r + (1 − r)·it/W), mmengine LinearLR's closed form), then ×0.1 at epochs 8 and 11.</summary>
public sealed class LrSchedule
{
    private readonly double _baseLr;
    private readonly int _warmupIters;
    private readonly double _warmupRatio;
    private readonly LrDecay _policy;
    private readonly IReadOnlyList<int> _steps;
    private readonly double _gamma;
    private readonly bool _byEpoch;
    private readonly long _totalIters;
    private readonly double _minLrRatio;
    private readonly bool _constantWarmup;

    /// <param name="steps">epochs (by_epoch) or iterations at which the lr is multiplied by gamma.</param>
    /// <param name="totalIters">length of the run in iterations (cosine horizon).</param>
    public LrSchedule(double baseLr, int warmupIters, double warmupRatio, LrDecay policy,
        IReadOnlyList<int> steps, double gamma, bool byEpoch, long totalIters, double minLrRatio = 0.0,
        bool constantWarmup = false)
    {
        _constantWarmup = constantWarmup;
        if (baseLr <= 0) throw new ArgumentOutOfRangeException(nameof(baseLr));
        _baseLr = baseLr; _warmupIters = Math.Max(0, warmupIters); _warmupRatio = warmupRatio;
        _policy = policy; _steps = steps; _gamma = gamma; _byEpoch = byEpoch;
        _totalIters = Math.Max(1, totalIters); _minLrRatio = minLrRatio;
    }

    /// <param name="iteration">0-based global iteration about to run.</param>
    /// <param name="epoch">0-based epoch the iteration belongs to.</param>
    public double At(long iteration, int epoch)
    {
        double lr = _policy switch
        {
            LrDecay.Step => _baseLr * Math.Pow(_gamma, _steps.Count(s => (_byEpoch ? epoch : iteration) >= s)),
            // mmengine CosineAnnealingLR by iteration: eta_min + (base − eta_min)(1 + cos(π t/T))/2.
            LrDecay.Cosine => _baseLr * _minLrRatio + (_baseLr - _baseLr * _minLrRatio) *
                               (1 + Math.Cos(Math.PI * Math.Min(iteration, _totalIters) / _totalIters)) / 2,
            _ => throw new InvalidOperationException(),
        };
        if (iteration < _warmupIters)
            lr *= _constantWarmup ? _warmupRatio : _warmupRatio + (1 - _warmupRatio) * iteration / _warmupIters;
        return lr;
    }
}
