using GflTrainer.Config;
using GflTrainer.Data.Transforms;
using GflTrainer.Training.Losses;
using GflTrainer.Training.Targets;
using TorchSharp;

namespace GflTrainer.Data.Statistics;

/// <summary>Ground truths of one group (a class, a size range) and how many of them get no positive anchor.</summary>
public sealed record CoverageGroup(string Name, long Gts, long WithoutPositive)
{
    public double PercentWithoutPositive => Gts == 0 ? 0 : 100.0 * WithoutPositive / Gts;
}

/// <summary>How many ground truths get no positive anchor under the configured anchors, assigner and img_scale: a gt
/// without a positive is never learnt (no classification target, no box target), so this is the number to watch when
/// choosing img_scale and octave_base_scale. Counted with the training loss's own target builder
/// (<see cref="DenseHeadLoss.FromConfig"/>, <see cref="IAnchorTargetBuilder"/>), so the head type picks the assigner
/// (ATSS for gfl and atss, MaxIoU for retinanet) and its settings exactly as in training. It lives in Data, the lowest
/// layer that may use both the data transforms and the training targets.</summary>
/// <param name="PositivesPerImageMedian">positive anchors of an image with boxes: the median, its 99th percentile (nearest
/// rank) and the most; a batch of B images has at most B x max, the positive capacity that spares every batch of a
/// training run with padded positives (a CUDA graph's fixed shapes) from running unpadded.</param>
public sealed record AnchorCoverage(string Assigner, long Gts, long WithoutPositive, double PositivesPerGtMean,
    double PositivesPerGtMedian, IReadOnlyList<CoverageGroup> PerSize, IReadOnlyList<CoverageGroup> PerClass,
    double PositivesPerImageMedian = 0, long PositivesPerImageP99 = 0, long PositivesPerImageMax = 0)
{
    public double PercentWithoutPositive => Gts == 0 ? 0 : 100.0 * WithoutPositive / Gts;

    internal static AnchorCoverage Compute(ModelConfig model, int padDivisor, IReadOnlyList<ResizedImage> images, CategoryMap categories)
    {
        var builder = DenseHeadLoss.FromConfig(model).TargetBuilder;
        var pad = new Pad(padDivisor);
        var positives = new List<long>();
        var perImage = new List<long>();
        var sizes = new List<BoxSize>();
        var labels = new List<long>();
        // Data sets have few distinct image shapes: lay each shape's anchors out once, not once per image.
        using var anchorsScope = torch.NewDisposeScope();
        var anchorsOfShape = new Dictionary<(int, int), torch.Tensor>();
        foreach (var image in images)
        {
            if (image.BoxCount == 0) continue;
            var ofImage = PositivesPerGt(builder, pad, image, anchorsOfShape);
            positives.AddRange(ofImage);
            perImage.Add(ofImage.Sum());   // an anchor is assigned to one gt at most
            for (int i = 0; i < image.BoxCount; i++)
            {
                var (w, h) = image.BoxSize(i);
                sizes.Add(BoxSizes.Of(w, h));
            }
            labels.AddRange(image.Labels);
        }

        CoverageGroup Group(string name, Func<int, bool> member)
        {
            long gts = 0, without = 0;
            for (int i = 0; i < positives.Count; i++)
                if (member(i)) { gts++; if (positives[i] == 0) without++; }
            return new CoverageGroup(name, gts, without);
        }
        var sorted = positives.Order().ToArray();
        var imageCounts = perImage.Order().ToArray();
        return new AnchorCoverage(
            Describe(model),
            positives.Count,
            positives.Count(p => p == 0),
            sorted.Length == 0 ? 0 : sorted.Average(),
            Median(sorted),
            BoxSizes.All.Select(s => Group(BoxSizes.Name(s), i => sizes[i] == s)).ToArray(),
            categories.Categories.Select((c, label) => Group(c.Name, i => labels[i] == label)).ToArray(),
            Median(imageCounts), NearestRank(imageCounts, 0.99), imageCounts.Length == 0 ? 0 : imageCounts[^1]);
    }

    /// <summary>The nearest-rank percentile of ascending values (0 when there are none).</summary>
    internal static long NearestRank(IReadOnlyList<long> sorted, double fraction) =>
        sorted.Count == 0 ? 0 : sorted[Math.Clamp((int)Math.Ceiling(fraction * sorted.Count) - 1, 0, sorted.Count - 1)];

    /// <summary>Positive anchors of each gt of one resized image, as training assigns them: the image's padded shape
    /// (<see cref="Pad"/>), one feature map cell per stride over it, and the builder's valid anchors and assigner.</summary>
    /// <param name="anchorsOfShape">anchors already laid out per padded shape (added to; they belong to the
    /// caller's dispose scope), or null.</param>
    internal static long[] PositivesPerGt(IAnchorTargetBuilder builder, Pad pad, ResizedImage image,
        Dictionary<(int, int), torch.Tensor>? anchorsOfShape = null)
    {
        var padShape = (pad.Padded(image.Height), pad.Padded(image.Width));
        var featmaps = builder.Anchors.FeatmapSizes(padShape);
        using var scope = torch.NewDisposeScope();
        if (anchorsOfShape is null || !anchorsOfShape.TryGetValue(padShape, out var anchors))
        {
            anchors = builder.Anchors.AllGridAnchors(featmaps, torch.CPU);
            if (anchorsOfShape is not null) anchorsOfShape[padShape] = anchors.MoveToOuterDisposeScope();
        }
        var boxes = torch.tensor(image.Boxes, [image.BoxCount, 4]);
        var labels = torch.tensor(image.Labels);
        return builder.PositivesPerGt(anchors, featmaps, padShape, boxes, labels).data<long>().ToArray();
    }

    static string Describe(ModelConfig m) => m.Head.Type == HeadType.Retinanet
        ? FormattableString.Invariant($"MaxIoU (pos_iou_thr {m.Assigner.PosIouThr}, neg_iou_thr {m.Assigner.NegIouThr}, min_pos_iou {m.Assigner.MinPosIou})")
        : $"ATSS (topk {m.Assigner.TopK})";

    internal static double Median(IReadOnlyList<long> sorted) => sorted.Count == 0 ? 0
        : sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2.0;
}
