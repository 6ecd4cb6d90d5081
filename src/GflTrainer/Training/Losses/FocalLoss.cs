using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace GflTrainer.Training.Losses;

/// <summary>
/// Focal Loss (Lin et al. 2017, RetinaNet, eq. 5) with a sigmoid per class, as mmdetection's <c>FocalLoss(use_sigmoid=True)</c>:
/// for logit z, p = sigmoid(z) and a one-hot target t (an all-zero row for background),
/// FL = −α_t (1 − p_t)^γ log p_t, i.e. α (1 − p)^γ · softplus(−z) on the (row, label) entry of a foreground row and
/// (1 − α) p^γ · softplus(z) everywhere else (BCE(z, 1) = softplus(−z), BCE(z, 0) = softplus(z)). QFL generalises it:
/// its target is the IoU instead of 1, and it has no α (<see cref="QualityFocalLoss"/>).
/// </summary>
internal sealed class FocalLoss(double gamma = 2.0, double alpha = 0.25, double lossWeight = 1.0)
{
    /// <summary>γ of the modulating factor. Reference: 2.</summary>
    public double Gamma { get; } = gamma;

    /// <summary>α, the weight of the foreground term (1 − α for background). Reference: 0.25.</summary>
    public double Alpha { get; } = alpha;

    /// <summary>Reference: 1.</summary>
    public double LossWeight { get; } = lossWeight;

    /// <param name="logits">(N, C) classification logits.</param>
    /// <param name="labels">(N,) int64 in 0..C; C is background.</param>
    /// <returns>(N, C) unweighted loss per entry, through autograd (the plain formula, for checks).</returns>
    public Tensor Elementwise(Tensor logits, Tensor labels)
    {
        using var scope = NewDisposeScope();
        var numClasses = logits.shape[1];
        // The negative formula everywhere, then the foreground (row, label) entries overwritten: the same values as
        // mmdetection's dense one-hot form, and no (N, C) target matrix.
        var sigma = logits.sigmoid();
        var loss = F.softplus(logits) * sigma.pow(Gamma) * (1 - Alpha);
        var rows = LevelRows.Foreground(labels, numClasses);
        if (rows.shape[0] > 0)
        {
            var cols = labels.index_select(0, rows);
            var posLogits = logits.index(rows, cols);
            var posLoss = F.softplus(-posLogits) * (1 - sigma.index(rows, cols)).pow(Gamma) * Alpha;
            loss.index_put_(posLoss, rows, cols);
        }
        return loss.MoveToOuterDisposeScope();
    }

    /// <returns>Scalar: lossWeight · Σ_rows(weight · Σ_classes FL) / (avgFactor + eps) (mmdetection broadcasts the
    /// per-row label weights over the classes, then weight_reduce_loss).</returns>
    /// <param name="weight">(N,) per-row weight (the label weights).</param>
    /// <param name="avgFactor">the classification normaliser (the number of positives, averaged over ranks).</param>
    /// <remarks>One autograd node with the gradient written out (<see cref="FusedFocal"/>), as for QFL: the
    /// (anchors x classes) matrix is read a few times instead of once per recorded op.</remarks>
    public Tensor Forward(Tensor logits, Tensor labels, Tensor weight, double avgFactor) =>
        ForwardPerSegment(logits, labels, weight, avgFactor, [logits.shape[0]])[0];

    /// <summary>The loss of each consecutive run of rows (the FPN levels of a level-major batch, <see cref="LevelRows"/>)
    /// from one pass over all of them: (S,) values, each as <see cref="Forward"/> on that run alone (the reference's
    /// per-level losses), with one positives <c>nonzero</c> and one kernel chain instead of one per level.</summary>
    /// <param name="segmentRows">rows of each run, in order; they add up to the rows of <paramref name="logits"/>.</param>
    /// <param name="positiveRows">the foreground rows ascending, when the caller has them (<see cref="LevelRows.Positives"/>):
    /// saves this loss its own <c>nonzero</c>, a device-to-host sync.</param>
    public Tensor ForwardPerSegment(Tensor logits, Tensor labels, Tensor weight, double avgFactor, IReadOnlyList<long> segmentRows,
        Tensor? positiveRows = null)
    {
        using var factor = WeightReduceLoss.AvgFactorOn(avgFactor, logits.device);
        return ForwardPerSegment(logits, labels, weight, factor, segmentRows, positiveRows);
    }

    /// <summary><see cref="ForwardPerSegment(Tensor, Tensor, Tensor, double, IReadOnlyList{long}, Tensor?)"/> with the
    /// normaliser as a 0-d float64 tensor on the device (averaged over the ranks there: no host read).</summary>
    public Tensor ForwardPerSegment(Tensor logits, Tensor labels, Tensor weight, Tensor avgFactor, IReadOnlyList<long> segmentRows,
        Tensor? positiveRows = null)
    {
        if (segmentRows.Sum() != logits.shape[0])
            throw new ArgumentException($"segments of {string.Join("+", segmentRows)} rows for {logits.shape[0]} rows", nameof(segmentRows));
        using var rows = positiveRows?.view(-1) ?? LevelRows.Foreground(labels, logits.shape[1]);
        using var scale = WeightReduceLoss.Scale(LossWeight, avgFactor, logits.dtype);
        return FusedFocal.apply(logits, labels, weight, Gamma, Alpha, scale, segmentRows.ToArray(), rows);
    }

    /// <summary>The reduced Focal Loss as one autograd node. With p = sigmoid(z), sp(z) = softplus(z), dp/dz = p(1 − p),
    /// d sp(±z)/dz = ±sigmoid(±z) and c_r = lossWeight · weight_r / (avgFactor + eps):
    /// background entries L = (1 − α) p^γ sp(z), dL/dz = (1 − α) p^γ (p + γ (1 − p) sp(z));
    /// foreground (row, label) entries L = α (1 − p)^γ sp(−z), dL/dz = α (1 − p)^γ (p − 1 − γ p sp(−z)).</summary>
    private sealed class FusedFocal : autograd.SingleTensorFunction<FusedFocal>
    {
        public override string Name => nameof(FusedFocal);

        // vars: logits (R, C), labels (R,), weight (R,), gamma, alpha, scale = lossWeight / (avgFactor + eps) (0-d, the
        // logits' type), rows per segment, foreground rows.
        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var (logits, labels, weight) = ((Tensor)vars[0], (Tensor)vars[1], (Tensor)vars[2]);
            double gamma = (double)vars[3], alpha = (double)vars[4];
            var segments = (long[])vars[6];
            using var scope = NewDisposeScope();
            var scale = ((Tensor)vars[5]).alias();   // a handle of this scope, saved below
            var sigma = logits.sigmoid();
            var softplus = F.softplus(logits);
            var modulation = sigma.pow(gamma);
            var loss = softplus * modulation * (1 - alpha);
            var rows = ((Tensor)vars[7]).view(-1);   // a handle of this scope, saved below
            var cols = labels.index_select(0, rows);
            var posSigma = sigma.index(rows, cols);
            var posSoftplus = F.softplus(-logits.index(rows, cols));
            var posModulation = (1 - posSigma).pow(gamma);
            loss.index_put_(posSoftplus * posModulation * alpha, rows, cols);
            var value = RowSegments.Sum(loss.sum(1) * weight, segments) * scale;
            // Saved tensors must outlive this scope (the graph keeps its own references), as in QualityFocalLoss.
            List<Tensor> keep = [sigma, softplus, modulation, rows, cols, posSigma, posSoftplus, posModulation, scale];
            foreach (var t in keep) t.MoveToOuterDisposeScope();
            ctx.save_for_backward([.. keep, weight]);
            ctx.save_data("gamma", gamma);
            ctx.save_data("alpha", alpha);
            ctx.save_data("segments", segments);
            return value.MoveToOuterDisposeScope();
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
        {
            var saved = ctx.get_saved_variables();
            var (sigma, softplus, modulation, rows, cols) = (saved[0], saved[1], saved[2], saved[3], saved[4]);
            var (posSigma, posSoftplus, posModulation, scale, weight) = (saved[5], saved[6], saved[7], saved[8], saved[9]);
            double gamma = (double)ctx.get_data("gamma"), alpha = (double)ctx.get_data("alpha");
            var segments = (long[])ctx.get_data("segments");
            var grad = addcmul(sigma, softplus, 1 - sigma, value: gamma).mul_(modulation).mul_(1 - alpha);
            var posGrad = (posSigma - 1 - gamma * posSigma * posSoftplus) * posModulation * alpha;
            grad.index_put_(posGrad, rows, cols);
            // Each row's factor is its segment's incoming gradient.
            grad.mul_((weight * scale * RowSegments.Expand(gradOutput, segments)).unsqueeze(1));
            return [grad, null!, null!, null!, null!, null!, null!, null!];
        }
    }
}
