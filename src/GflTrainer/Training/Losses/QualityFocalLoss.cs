using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace GflTrainer.Training.Losses;

/// <summary>
/// Quality Focal Loss (Li et al. 2020, eq. 6) with sigmoid outputs: for logit z, σ = sigmoid(z) and a target
/// t = IoU quality on the gt class of a positive anchor (0 for every other entry),
/// QFL = BCEWithLogits(z, t) · |t − σ|^β. The modulating factor is not detached (as in mmdetection).
/// </summary>
internal sealed class QualityFocalLoss(double beta = 2.0, double lossWeight = 1.0)
{
    /// <summary>β of the modulating factor. Reference: 2.</summary>
    public double Beta { get; } = beta;

    /// <summary>Reference: 1.</summary>
    public double LossWeight { get; } = lossWeight;

    /// <param name="logits">(N, C) classification logits.</param>
    /// <param name="labels">(N,) int64 in 0..C; C is background.</param>
    /// <param name="quality">(N,) float IoU targets, read only on foreground rows.</param>
    /// <returns>(N, C) unweighted loss per entry.</returns>
    public Tensor Elementwise(Tensor logits, Tensor labels, Tensor quality)
    {
        using var scope = NewDisposeScope();
        var numClasses = logits.shape[1];
        // mmdetection's form: the negative formula for every entry, BCE(z, 0)·σ(z)^β, then the (row, label) entries of
        // foreground rows overwritten with BCE(z, y)·|y − σ(z)|^β. Cheaper than a dense target (4 passes over N x C
        // instead of 7) and the same values and gradients (overwritten entries contribute nothing). BCE(z, 0) is
        // softplus(z) = log(1 + e^z): one fused kernel instead of BCE-with-logits' composite of several passes (3x
        // faster on the (anchors x classes) matrix); equal up to float rounding.
        var sigma = logits.sigmoid();
        var loss = F.softplus(logits) * sigma.pow(Beta);
        var rows = LevelRows.Foreground(labels, numClasses);
        if (rows.shape[0] > 0)
        {
            var cols = labels.index_select(0, rows);
            var posLogits = logits.index(rows, cols);
            var y = quality.to(logits.dtype).index_select(0, rows);
            var scale = y - sigma.index(rows, cols);
            var posLoss = F.binary_cross_entropy_with_logits(posLogits, y, reduction: nn.Reduction.None) * scale.abs().pow(Beta);
            loss.index_put_(posLoss, rows, cols);   // in place on the product: its backward needs only the factors
        }
        return loss.MoveToOuterDisposeScope();
    }

    /// <returns>Scalar: lossWeight · Σ_rows(weight · Σ_classes QFL) / (avgFactor + eps).</returns>
    /// <param name="weight">(N,) per-row weight (the label weights).</param>
    /// <param name="avgFactor">the classification normaliser.</param>
    /// <remarks>The value is <see cref="Elementwise"/> reduced as above; the gradient is written out analytically
    /// (<see cref="FusedQfl"/>) instead of being recorded op by op: on the (anchors x classes) matrix that is 6 passes
    /// in the backward instead of about 15, the largest cost of the loss.</remarks>
    public Tensor Forward(Tensor logits, Tensor labels, Tensor quality, Tensor weight, double avgFactor) =>
        ForwardPerSegment(logits, labels, quality, weight, avgFactor, [logits.shape[0]])[0];

    /// <summary>The loss of each consecutive run of rows (e.g. the FPN levels of a level-major batch) from one pass over
    /// all of them: (S,) values, each the weighted sum over its rows times loss_weight / (avg_factor + eps), as
    /// <see cref="Forward"/> on that run alone.</summary>
    /// <param name="segmentRows">rows of each run, in order; they add up to the rows of <paramref name="logits"/>.</param>
    /// <param name="positiveRows">the foreground rows (label in 0..C−1) ascending, when the caller has them
    /// (<see cref="LevelRows.Positives"/>): saves this loss its own <c>nonzero</c>, a device-to-host sync.</param>
    public Tensor ForwardPerSegment(Tensor logits, Tensor labels, Tensor quality, Tensor weight, double avgFactor, IReadOnlyList<long> segmentRows,
        Tensor? positiveRows = null)
    {
        using var factor = WeightReduceLoss.AvgFactorOn(avgFactor, logits.device);
        return ForwardPerSegment(logits, labels, quality, weight, factor, segmentRows, positiveRows);
    }

    /// <summary><see cref="ForwardPerSegment(Tensor, Tensor, Tensor, Tensor, double, IReadOnlyList{long}, Tensor?)"/> with
    /// the normaliser as a 0-d float64 tensor on the device (averaged over the ranks there: no host read).</summary>
    public Tensor ForwardPerSegment(Tensor logits, Tensor labels, Tensor quality, Tensor weight, Tensor avgFactor, IReadOnlyList<long> segmentRows,
        Tensor? positiveRows = null)
    {
        if (segmentRows.Sum() != logits.shape[0])
            throw new ArgumentException($"segments of {string.Join("+", segmentRows)} rows for {logits.shape[0]} rows", nameof(segmentRows));
        using var rows = positiveRows?.view(-1) ?? LevelRows.Foreground(labels, logits.shape[1]);
        using var scale = WeightReduceLoss.Scale(LossWeight, avgFactor, logits.dtype);
        return FusedQfl.apply(logits, labels, quality, weight, Beta, scale, segmentRows.ToArray(), rows);
    }

    /// <summary>The reduced QFL as one autograd node. With σ = sigmoid(z), sp = softplus(z) = BCE(z, 0) and the
    /// row coefficient c_r = lossWeight · weight_r / (avgFactor + eps):
    /// negatives L = sp·σ^β, dL/dz = σ^β·(σ + β·sp·(1 − σ)) (d sp/dz = σ, dσ/dz = σ(1 − σ));
    /// the (row, label) entry of a foreground row L = BCE(z, y)·|y − σ|^β,
    /// dL/dz = (σ − y)·|y − σ|^β + BCE(z, y)·β·|y − σ|^(β−1)·sign(σ − y)·σ(1 − σ) (y is a detached target), which
    /// replaces the negative formula's gradient there, as overwriting the loss entry does in the reference.</summary>
    private sealed class FusedQfl : autograd.SingleTensorFunction<FusedQfl>
    {
        public override string Name => nameof(FusedQfl);

        // vars: logits (R, C), labels (R,), quality (R,), weight (R,), beta, scale = lossWeight / (avgFactor + eps) (0-d,
        // the logits' type), rows per segment, foreground rows.
        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var (logits, labels, quality, weight) = ((Tensor)vars[0], (Tensor)vars[1], (Tensor)vars[2], (Tensor)vars[3]);
            double beta = (double)vars[4];
            var segments = (long[])vars[6];
            using var scope = NewDisposeScope();
            var scale = ((Tensor)vars[5]).alias();   // a handle of this scope, saved below
            var sigma = logits.sigmoid();
            var softplus = F.softplus(logits);
            var modulation = sigma.pow(beta);
            var loss = softplus * modulation;
            var rows = ((Tensor)vars[7]).view(-1);   // a handle of this scope, saved below
            var cols = labels.index_select(0, rows);
            var y = quality.to(logits.dtype).index_select(0, rows);
            var posSigma = sigma.index(rows, cols);
            var posBce = F.binary_cross_entropy_with_logits(logits.index(rows, cols), y, reduction: nn.Reduction.None);
            loss.index_put_(posBce * (y - posSigma).abs().pow(beta), rows, cols);
            var value = RowSegments.Sum(loss.sum(1) * weight, segments) * scale;
            // TorchSharp packs the saved tensors after forward returns: they must outlive this scope (the caller's scope
            // disposes the C# handles; the graph keeps its own references).
            List<Tensor> keep = [sigma, softplus, modulation, rows, cols, y, posSigma, posBce, scale];
            foreach (var t in keep) t.MoveToOuterDisposeScope();
            ctx.save_for_backward([.. keep, weight]);
            ctx.save_data("beta", beta);
            ctx.save_data("segments", segments);
            return value.MoveToOuterDisposeScope();
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
        {
            var saved = ctx.get_saved_variables();
            var (sigma, softplus, modulation, rows, cols) = (saved[0], saved[1], saved[2], saved[3], saved[4]);
            var (y, posSigma, posBce, scale, weight) = (saved[5], saved[6], saved[7], saved[8], saved[9]);
            double beta = (double)ctx.get_data("beta");
            var segments = (long[])ctx.get_data("segments");
            var grad = addcmul(sigma, softplus, 1 - sigma, value: beta).mul_(modulation);
            var diff = posSigma - y;
            var distance = diff.abs();
            var posGrad = diff * distance.pow(beta) + posBce * beta * distance.pow(beta - 1) * diff.sign() * posSigma * (1 - posSigma);
            grad.index_put_(posGrad, rows, cols);
            // Each row's factor is its segment's incoming gradient.
            var rowGrad = RowSegments.Expand(gradOutput, segments);
            grad.mul_((weight * scale * rowGrad).unsqueeze(1));
            return [grad, null!, null!, null!, null!, null!, null!, null!];
        }
    }
}
