using GflTrainer.Boxes;
using GflTrainer.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace GflTrainer.Training.Targets;

/// <summary>Result of <see cref="AtssAssigner.Assign"/> for one image.</summary>
/// <param name="IsPositive">(n,) bool: the anchor is assigned to a ground-truth box.</param>
/// <param name="GtIndex">(n,) int64: 0-based index of the assigned gt where positive, 0 elsewhere (read it only
/// through <paramref name="IsPositive"/>).</param>
/// <param name="MaxOverlaps">(n,) float32 as mmdetection's AssignResult holds it: IoU with the assigned gt for
/// positives, −1e8 for negatives, 0 everywhere when the image has no gt.</param>
/// <param name="IouThresholds">(G,) float32: mean + unbiased std of each gt's candidate IoUs.</param>
/// <param name="Candidates">(K, G) int64 anchor index of each gt's candidates (K = Σ over levels of min(topk, A_l)).</param>
/// <param name="CandidatePasses">(K, G) bool: that candidate passes both the IoU threshold and the centre-inside test
/// (before conflicts between gts are resolved).</param>
internal sealed record AtssAssignment(Tensor IsPositive, Tensor GtIndex, Tensor MaxOverlaps, Tensor IouThresholds,
    Tensor Candidates, Tensor CandidatePasses)
{
    /// <summary>Σ over levels of min(topk, anchors in that level): the same for every gt of the image.</summary>
    public int CandidatesPerGt => (int)Candidates.shape[0];
}

/// <summary>
/// Adaptive Training Sample Selection (Zhang et al. 2020, Alg. 1) as mmdetection's <c>ATSSAssigner(topk=9)</c>:
/// per level the topk anchors nearest to each gt centre are candidates; a candidate is positive when its IoU is at
/// least mean + std (unbiased) of that gt's candidate IoUs and its centre lies inside the gt by more than 0.01 px;
/// an anchor positive for several gts goes to the highest IoU (exact ties: the lowest gt index).
/// Crowd boxes are not used (ignore_iof_thr = −1 in the reference config).
/// </summary>
/// <param name="denseConflicts">how an anchor that passes for several gts is resolved, with identical results (tested):
/// over a dense (n, G) matrix as the reference, with no device-to-host sync (the GPU's choice: a sync stalls the launch
/// queue), or over the rows of only the anchors that have a passing pair (a <c>nonzero</c> and a <c>unique</c>, two
/// syncs, but a few hundred rows instead of n ≈ 20k: the CPU's choice). Null: dense on CUDA, sparse elsewhere.</param>
internal sealed class AtssAssigner(int topK = 9, bool? denseConflicts = null)
{
    // mmdetection fills non-positive (anchor, gt) pairs with −INF = −1e8 before the per-anchor max.
    private const float NegativeOverlap = -100000000f;
    private const double InsideMargin = 0.01;

    /// <summary>ATSS candidates per pyramid level (k in the paper). Reference: 9.</summary>
    public int TopK { get; } = topK;

    /// <param name="anchors">(n, 4) xyxy pixels: the image's valid anchors, levels concatenated in stride order.</param>
    /// <param name="anchorsPerLevel">how many of those anchors each level holds.</param>
    /// <param name="gtBoxes">(G, 4) xyxy pixels; G may be 0.</param>
    public AtssAssignment Assign(Tensor anchors, IReadOnlyList<long> anchorsPerLevel, Tensor gtBoxes)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var device = anchors.device;
        var numAnchors = anchors.shape[0];
        var numGts = gtBoxes.shape[0];
        if (numGts == 0 || numAnchors == 0)
        {
            return Keep(new AtssAssignment(
                zeros(numAnchors, dtype: ScalarType.Bool, device: device),
                zeros(numAnchors, dtype: int64, device: device),
                zeros(numAnchors, dtype: float32, device: device),
                zeros(numGts, dtype: float32, device: device),
                zeros(0, numGts, dtype: int64, device: device),
                zeros(0, numGts, dtype: ScalarType.Bool, device: device)));
        }

        var anchorCenters = AnchorGenerator.Centers(anchors);                         // (n, 2)
        var gtCenters = AnchorGenerator.Centers(gtBoxes);                             // (G, 2)
        // Centre distances as (G, n) rows, so each level's top-k runs along contiguous memory. sqrt(dx² + dy²) with
        // dx = g − a: the same per-element arithmetic as the reference's ((a − g)²).sum(-1).sqrt() (negation is exact,
        // a two-term sum has one order), without (n, G, 2) intermediates.
        var dx = gtCenters[TensorIndex.Colon, 0].unsqueeze(1) - anchorCenters[TensorIndex.Colon, 0].unsqueeze(0);
        var dy = gtCenters[TensorIndex.Colon, 1].unsqueeze(1) - anchorCenters[TensorIndex.Colon, 1].unsqueeze(0);
        var distances = (dx * dx + dy * dy).sqrt();

        var candidateParts = new List<Tensor>();
        long start = 0;
        foreach (var count in anchorsPerLevel)
        {
            var k = (int)Math.Min(TopK, count);
            if (k > 0)
            {
                var (_, nearest) = distances.narrow(1, start, count).topk(k, dim: 1, largest: false);
                candidateParts.Add(nearest + start);
            }
            start += count;
        }
        var candidates = cat(candidateParts, 1).t().contiguous();                    // (K, G) anchor indices
        var numCandidates = candidates.shape[0];
        var flat = candidates.reshape(-1);                                            // pair k·G + g

        // Only the K·G candidate pairs need an IoU: the reference's dense (n, G) overlaps are read nowhere else
        // (non-candidates are filled with −INF before the per-anchor max). Same per-element formula as the
        // pairwise matrix, so the values are identical.
        var candidateAnchors = anchors.index_select(0, flat);
        var candidateOverlaps = BoxOverlaps.Aligned(candidateAnchors, gtBoxes.repeat(numCandidates, 1)).view(numCandidates, numGts);
        var thresholds = candidateOverlaps.mean(new long[] { 0 }) + candidateOverlaps.std(0, unbiased: true);
        var passesIou = candidateOverlaps >= thresholds.unsqueeze(0);

        var candidateCenters = anchorCenters.index_select(0, flat);
        var candidateX = candidateCenters[TensorIndex.Colon, 0].view(numCandidates, numGts);
        var candidateY = candidateCenters[TensorIndex.Colon, 1].view(numCandidates, numGts);
        var margins = stack(new[]
        {
            candidateX - gtBoxes[TensorIndex.Colon, 0],
            candidateY - gtBoxes[TensorIndex.Colon, 1],
            gtBoxes[TensorIndex.Colon, 2] - candidateX,
            gtBoxes[TensorIndex.Colon, 3] - candidateY,
        }, -1);
        var inside = margins.amin(new long[] { -1 }) > InsideMargin;
        var positive = passesIou & inside;

        // An anchor that passes for several gts goes to the highest IoU, exact ties to the lowest gt index (torch.max
        // on CPU returns the first maximum; explicit so that it holds on every device). The reference takes that max
        // over a dense (n, G) matrix that is −INF outside the passing pairs.
        var (maxOverlaps, gtIndex) = (denseConflicts ?? device.type == DeviceType.CUDA)
            ? ResolveDense(flat, positive, candidateOverlaps, numAnchors, numGts, device)
            : ResolveSparse(flat, positive, candidateOverlaps, numAnchors, numGts, device);
        var isPositive = maxOverlaps != NegativeOverlap;

        return Keep(new AtssAssignment(
            isPositive,
            gtIndex,
            maxOverlaps,
            thresholds,
            candidates,
            positive));
    }

    // The reference's dense matrix: every (candidate anchor, gt) pair is distinct (a gt's candidates are distinct
    // anchors), so the index_put_ writes each entry once, deterministically on every device.
    private static (Tensor MaxOverlaps, Tensor GtIndex) ResolveDense(Tensor flat, Tensor positive, Tensor candidateOverlaps,
        long numAnchors, long numGts, Device device)
    {
        var overlaps = full(new[] { numAnchors, numGts }, NegativeOverlap, dtype: float32, device: device);
        var pairGt = arange(numGts, dtype: int64, device: device).repeat(candidateOverlaps.shape[0]);   // pair k·G + g -> g
        overlaps.index_put_(where(positive, candidateOverlaps, full_like(candidateOverlaps, NegativeOverlap)).reshape(-1), flat, pairGt);
        var maxOverlaps = overlaps.amax(new long[] { 1 });
        var gtRange = arange(numGts, dtype: int64, device: device).unsqueeze(0).expand(numAnchors, numGts);
        // Anchors without a passing pair: every entry is −INF, so the lowest index 0, as the sparse path leaves them.
        var gtIndex = where(overlaps == maxOverlaps.unsqueeze(1), gtRange, full_like(gtRange, numGts)).amin(new long[] { 1 });
        return (maxOverlaps, gtIndex);
    }

    // The same max over the rows of the anchors that have a passing pair (at most K·G of them).
    private static (Tensor MaxOverlaps, Tensor GtIndex) ResolveSparse(Tensor flat, Tensor positive, Tensor candidateOverlaps,
        long numAnchors, long numGts, Device device)
    {
        var pairs = positive.reshape(-1).nonzero().squeeze(1);
        var (rowAnchors, pairRow, _) = unique(flat.index_select(0, pairs), sorted: true, return_inverse: true);
        var rowOverlaps = full(rowAnchors.shape[0], numGts, NegativeOverlap, dtype: float32, device: device);
        rowOverlaps.index_put_(candidateOverlaps.reshape(-1).index_select(0, pairs), pairRow!, pairs.remainder(numGts));
        var rowMax = rowOverlaps.amax(new long[] { 1 });
        var gtRange = arange(numGts, dtype: int64, device: device).unsqueeze(0).expand(rowAnchors.shape[0], numGts);
        var rowGt = where(rowOverlaps == rowMax.unsqueeze(1), gtRange, full_like(gtRange, numGts)).amin(new long[] { 1 });
        var maxOverlaps = full(numAnchors, NegativeOverlap, dtype: float32, device: device).index_copy_(0, rowAnchors, rowMax);
        var gtIndex = zeros(numAnchors, dtype: int64, device: device).index_copy_(0, rowAnchors, rowGt);
        return (maxOverlaps, gtIndex);
    }

    private static AtssAssignment Keep(AtssAssignment a)
    {
        a.IsPositive.MoveToOuterDisposeScope();
        a.GtIndex.MoveToOuterDisposeScope();
        a.MaxOverlaps.MoveToOuterDisposeScope();
        a.IouThresholds.MoveToOuterDisposeScope();
        a.Candidates.MoveToOuterDisposeScope();
        a.CandidatePasses.MoveToOuterDisposeScope();
        return a;
    }
}
