using GflTrainer.Data.Transforms;

namespace GflTrainer.Data;

/// <summary>
/// <c>data.batch_shape: fixed</c>: every training batch padded to the largest shape its orientation can take at the
/// training scales, instead of to its largest image (mmdetection's <c>BatchFixedSizePad</c>, one size per aspect group).
/// A keep-ratio resize to [long L, short S] leaves a landscape image within (H ≤ S, W ≤ L) and a portrait one within
/// (H ≤ L, W ≤ S), so a run sees at most three input shapes (the third, L x L, only for batches that mix the two, when
/// data.group_by_aspect_ratio is off): cuDNN's autotuning runs once per shape, and a CUDA graph captured per shape can
/// be replayed for every batch (issue 21). The price is the extra padded pixels, and the head's GroupNorm, whose
/// statistics span the padding, sees slightly different numbers than with the reference's per-batch padding.
/// </summary>
/// <param name="longEdge">the largest long edge of the training scales.</param>
/// <param name="shortEdge">the largest short edge of the training scales.</param>
internal sealed class FixedBatchShape(int longEdge, int shortEdge, Pad pad)
{
    /// <summary>The bounds of <paramref name="scales"/>: the largest long and short edge any drawn scale can have.</summary>
    public static FixedBatchShape Of(MultiScale scales, Pad pad) =>
        new(scales.Scales.Max(s => s.LongEdge), scales.Scales.Max(s => s.ShortEdge), pad);

    /// <summary>The padded (H, W) shapes a batch can get: landscape, portrait, then the square for mixed batches.</summary>
    public IReadOnlyList<(int H, int W)> Shapes =>
    [
        (pad.Padded(shortEdge), pad.Padded(longEdge)),
        (pad.Padded(longEdge), pad.Padded(shortEdge)),
        (pad.Padded(Math.Max(longEdge, shortEdge)), pad.Padded(Math.Max(longEdge, shortEdge))),
    ];

    /// <summary>The first of <see cref="Shapes"/> that holds every image of the batch (their padded shapes); an image
    /// beyond every bound (not from a keep-ratio resize at these scales) makes it the batch's own largest shape.</summary>
    public (int H, int W) For(IReadOnlyList<(int H, int W)> paddedImages)
    {
        foreach (var shape in Shapes)
            if (paddedImages.All(i => i.H <= shape.H && i.W <= shape.W)) return shape;
        return (paddedImages.Max(i => i.H), paddedImages.Max(i => i.W));
    }
}
