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

/// <summary>Plain numbers of a <see cref="LossBreakdown"/>, safe to keep after the step's dispose scope.</summary>
public sealed record LossScalars(
    double Cls, double Box, double Dfl, double Total,
    IReadOnlyList<double> ClsPerLevel, IReadOnlyList<double> BoxPerLevel, IReadOnlyList<double> DflPerLevel,
    double ClsAvgFactor, double BoxAvgFactor);

/// <summary>GFL losses of one batch (mmdetection's loss dict: loss_cls, loss_bbox, loss_dfl, 5 levels each).</summary>
/// <param name="ClsPerLevel">QFL per level, scalars.</param>
/// <param name="BoxPerLevel">GIoU loss per level, already divided by <paramref name="BoxAvgFactor"/>.</param>
/// <param name="DflPerLevel">DFL per level, already divided by <paramref name="BoxAvgFactor"/>.</param>
/// <param name="Cls">Σ of <paramref name="ClsPerLevel"/>.</param>
/// <param name="Box">Σ of <paramref name="BoxPerLevel"/>.</param>
/// <param name="Dfl">Σ of <paramref name="DflPerLevel"/>.</param>
/// <param name="Total">Cls + Box + Dfl: what backward runs on.</param>
/// <param name="ClsAvgFactor">Σ over images of max(num_pos, 1).</param>
/// <param name="BoxAvgFactor">max(Σ of the positives' weights over levels and images, 1).</param>
/// <param name="WeightSumPerLevel">(L,) Σ of the positives' weights of each level.</param>
/// <param name="Targets">the per-anchor targets used.</param>
/// <param name="QualityTargets">(N, A) QFL IoU target, 0 for non-positives.</param>
/// <param name="Positives">per level, what the box losses were computed on.</param>
internal sealed record LossBreakdown(
    IReadOnlyList<Tensor> ClsPerLevel,
    IReadOnlyList<Tensor> BoxPerLevel,
    IReadOnlyList<Tensor> DflPerLevel,
    Tensor Cls,
    Tensor Box,
    Tensor Dfl,
    Tensor Total,
    double ClsAvgFactor,
    double BoxAvgFactor,
    Tensor WeightSumPerLevel,
    GflTargets Targets,
    Tensor QualityTargets,
    IReadOnlyList<LevelPositives> Positives)
{
    /// <summary>Reads every loss value with one device sync.</summary>
    public LossScalars ToScalars()
    {
        var levels = ClsPerLevel.Count;
        var all = ClsPerLevel.Concat(BoxPerLevel).Concat(DflPerLevel).Append(Cls).Append(Box).Append(Dfl).Append(Total)
            .Select(t => t.detach().to(float64).reshape(1));
        using var stacked = cat(all.ToList(), 0).cpu();
        var v = stacked.data<double>().ToArray();
        return new LossScalars(v[3 * levels], v[3 * levels + 1], v[3 * levels + 2], v[3 * levels + 3],
            v[..levels], v[levels..(2 * levels)], v[(2 * levels)..(3 * levels)], ClsAvgFactor, BoxAvgFactor);
    }
}
