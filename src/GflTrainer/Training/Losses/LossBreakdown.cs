using GflTrainer.Training.Targets;
using static TorchSharp.torch;

namespace GflTrainer.Training.Losses;

/// <summary>The positives of one level as the loss saw them (processing order: image, then y, then x).</summary>
/// <param name="Index">(P_l,) int64 flat index into the level's (N·h·w) rows: b·h·w + y·w + x.</param>
/// <param name="Weight">(P_l,) detached max over all classes of sigmoid(cls_score).</param>
/// <param name="PredDistances">(P_l, 4) Integral output (stride units).</param>
/// <param name="PredBoxes">(P_l, 4) decoded around anchor_centre/stride (stride units, not clamped).</param>
/// <param name="TargetBoxes">(P_l, 4) gt box / stride.</param>
/// <param name="Quality">(P_l,) IoU(pred box detached, target box): the QFL target.</param>
/// <param name="DflTargets">(P_l, 4) distances to the target sides clamped to [0, R − 0.1].</param>
internal sealed record LevelPositives(Tensor Index, Tensor Weight, Tensor PredDistances, Tensor PredBoxes,
    Tensor TargetBoxes, Tensor Quality, Tensor DflTargets);

/// <summary>One named loss term, as mmdetection logs it (<c>loss_cls</c>, <c>loss_bbox</c>, <c>loss_dfl</c>).</summary>
public readonly record struct LossTerm(string Name, double Value);

/// <summary>Plain numbers of a step's losses, safe to keep after the step's dispose scope: the total backward ran on
/// and the named terms in the loss's order. Logging, progress, TensorBoard and the non-finite report read the terms
/// by name, so a new term is added where the loss defines it and nowhere else.</summary>
public sealed record LossScalars(double Total, IReadOnlyList<LossTerm> Terms)
{
    public double this[string name] => Terms.FirstOrDefault(t => t.Name == name) is { Name: not null } t
        ? t.Value : throw new KeyNotFoundException($"no loss term {name} (have {string.Join(", ", Terms.Select(x => x.Name))})");

    /// <summary>Σ of per-level losses left to right (Python's sum over the level list, in the tensors' dtype).</summary>
    internal static Tensor SumLevels(IReadOnlyList<Tensor> values)
    {
        var total = values[0];
        for (var i = 1; i < values.Count; i++) total = total + values[i];
        return total;
    }

    /// <summary>Reads <paramref name="total"/> and every term with one device sync.</summary>
    internal static LossScalars Read(IReadOnlyList<(string Name, Tensor Value)> terms, Tensor total) => Read(terms, total, []).Scalars;

    /// <summary>Reads <paramref name="total"/>, every term and a 0-d bool (the gradient check's flag) with one device sync.</summary>
    internal static (LossScalars Scalars, bool Flag) Read(IReadOnlyList<(string Name, Tensor Value)> terms, Tensor total, Tensor flag)
    {
        var (scalars, extra) = Read(terms, total, [flag]);
        return (scalars, extra[0] != 0);
    }

    private static (LossScalars Scalars, double[] Extra) Read(IReadOnlyList<(string Name, Tensor Value)> terms, Tensor total, Tensor[] extra)
    {
        using var stacked = Row(terms, total, extra).cpu();
        return FromRow(terms.Select(t => t.Name).ToList(), stacked.data<double>().ToArray());
    }

    /// <summary>The values as one (terms + 1 + extra,) float64 row on their device, nothing read: every term, the total,
    /// then the <paramref name="extra"/> 0-d values (flags as 1/0). Read back with <see cref="FromRow"/>.</summary>
    internal static Tensor Row(IReadOnlyList<(string Name, Tensor Value)> terms, Tensor total, params Tensor[] extra)
    {
        using var noGrad = no_grad();
        return cat(terms.Select(t => t.Value).Append(total).Concat(extra).Select(t => t.detach().to(float64).reshape(1)).ToList(), 0);
    }

    /// <summary>A <see cref="Row"/> read back: the scalars of the <paramref name="names"/> terms and the extra values.</summary>
    internal static (LossScalars Scalars, double[] Extra) FromRow(IReadOnlyList<string> names, double[] row)
    {
        int n = names.Count;
        return (new LossScalars(row[n], names.Select((name, i) => new LossTerm(name, row[i])).ToList()), row[(n + 1)..]);
    }

    /// <summary><c>loss_cls=…, loss_bbox=…</c> in the terms' order.</summary>
    public override string ToString() => string.Join(", ", Terms.Select(t => $"{t.Name}={t.Value}"));
}

/// <summary>GFL losses of one batch (mmdetection's loss dict: loss_cls, loss_bbox, loss_dfl, 5 levels each).</summary>
/// <param name="ClsPerLevel">QFL per level, scalars.</param>
/// <param name="BoxPerLevel">GIoU loss per level, already divided by <paramref name="BoxAvgFactor"/>.</param>
/// <param name="DflPerLevel">DFL per level, already divided by <paramref name="BoxAvgFactor"/>.</param>
/// <param name="Cls">Σ of <paramref name="ClsPerLevel"/>.</param>
/// <param name="Box">Σ of <paramref name="BoxPerLevel"/>.</param>
/// <param name="Dfl">Σ of <paramref name="DflPerLevel"/>.</param>
/// <param name="Total">Cls + Box + Dfl: what backward runs on.</param>
/// <param name="ClsAvgFactor">0-d float64: Σ over images of max(num_pos, 1) (averaged over ranks).</param>
/// <param name="BoxAvgFactor">0-d: max(Σ of the positives' weights over levels and images, 1) (<see cref="WeightReduceLoss.BoxAvgFactor"/>).</param>
/// <param name="WeightSumPerLevel">(L,) Σ of the positives' weights of each level.</param>
/// <param name="Targets">the per-anchor targets used.</param>
/// <param name="QualityTargetsOf">makes <see cref="QualityTargets"/> on request.</param>
/// <param name="PositivesByLevel">makes <see cref="Positives"/> on request.</param>
internal sealed record LossBreakdown(
    IReadOnlyList<Tensor> ClsPerLevel,
    IReadOnlyList<Tensor> BoxPerLevel,
    IReadOnlyList<Tensor> DflPerLevel,
    Tensor Cls,
    Tensor Box,
    Tensor Dfl,
    Tensor Total,
    Tensor ClsAvgFactor,
    Tensor BoxAvgFactor,
    Tensor WeightSumPerLevel,
    GflTargets Targets,
    Func<Tensor> QualityTargetsOf,
    Func<IReadOnlyList<LevelPositives>> PositivesByLevel) : IHeadLosses
{
    private IReadOnlyList<LevelPositives>? _positives;
    private Tensor? _quality;

    /// <summary>(N, A) QFL IoU target, 0 for non-positives, in the targets' per-image layout; laid out on first access
    /// (11 operators and a copy the step itself does not need).</summary>
    public Tensor QualityTargets => _quality ??= QualityTargetsOf();

    /// <summary>Per level, what the box losses were computed on; split on first access (it reads the level counts
    /// from the device, which the step itself never needs).</summary>
    public IReadOnlyList<LevelPositives> Positives => _positives ??= PositivesByLevel();

    /// <summary>The named terms whose sum is <see cref="Total"/> (mmdetection's loss dict keys).</summary>
    public IReadOnlyList<(string Name, Tensor Value)> Terms => [("loss_cls", Cls), ("loss_bbox", Box), ("loss_dfl", Dfl)];

    /// <summary>Reads the total and every term with one device sync.</summary>
    public LossScalars ToScalars() => LossScalars.Read(Terms, Total);
}
