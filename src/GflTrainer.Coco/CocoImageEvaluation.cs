namespace GflTrainer.Coco;

/// <summary>What a detection counts as at one IoU threshold, after pycocotools' <c>evaluateImg</c>.</summary>
internal enum DetectionOutcome : byte
{
    /// <summary>Matched to a crowd or out-of-range annotation, or unmatched and itself outside the area range.</summary>
    Ignored,
    /// <summary>Matched to an annotation (whose id is not 0: pycocotools reads the matched id as a truth value).</summary>
    TruePositive,
    FalsePositive,
}

/// <summary>pycocotools' <c>evaluateImg</c> result for one image, category and area range.</summary>
/// <param name="Scores">(D,) detection scores, highest first (stable), at most maxDets[-1] of them.</param>
/// <param name="Outcomes">(D, T) row-major: the outcome of each detection at each IoU threshold.</param>
/// <param name="NonIgnoredGroundTruth">Annotations that are neither crowd nor outside the area range.</param>
internal sealed record CocoImageEvaluation(double[] Scores, DetectionOutcome[] Outcomes, int NonIgnoredGroundTruth)
{
    public int DetectionCount => Scores.Length;
}
