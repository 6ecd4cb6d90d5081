namespace GflTrainer.Data.Transforms;

/// <summary>A keep-ratio target scale: the long side is at most <see cref="LongEdge"/> and the short side at most
/// <see cref="ShortEdge"/> (mmdetection's <c>img_scale=(1333, 800)</c>).</summary>
public sealed record ResizeScale(int LongEdge, int ShortEdge)
{
    public static readonly ResizeScale Coco = new(1333, 800);
}

/// <summary>How a training scale is drawn when several are given (mmdetection Resize <c>multiscale_mode</c>).</summary>
public enum MultiScaleMode
{
    /// <summary>One of the listed scales, uniformly.</summary>
    Value,
    /// <summary>Two scales span a range: long edge and short edge each drawn uniformly (integers, both ends included).</summary>
    Range,
}

/// <summary>The training scale(s). A single scale is the reference 1x setting.</summary>
public sealed record MultiScale(IReadOnlyList<ResizeScale> Scales, MultiScaleMode Mode = MultiScaleMode.Value)
{
    public static readonly MultiScale Single = new([ResizeScale.Coco]);

    internal ResizeScale Pick(Random rng)
    {
        if (Scales.Count == 0) throw new GflConfigException("at least one resize scale is required");
        if (Scales.Count == 1) return Scales[0];
        if (Mode == MultiScaleMode.Value) return Scales[rng.Next(Scales.Count)];
        if (Scales.Count != 2) throw new GflConfigException("multi-scale 'range' needs exactly two scales");
        int l0 = Scales.Min(s => s.LongEdge), l1 = Scales.Max(s => s.LongEdge);
        int s0 = Scales.Min(s => s.ShortEdge), s1 = Scales.Max(s => s.ShortEdge);
        int longEdge = rng.Next(l0, l1 + 1);
        int shortEdge = rng.Next(s0, s1 + 1);
        return new ResizeScale(longEdge, shortEdge);
    }
}
