using System.ComponentModel;

namespace GflTrainer.Config;

/// <summary>Metrics computed by COCO evaluation.</summary>
public enum EvalMetric
{
    /// <summary>COCO box AP/AR (pycocotools' 12 numbers).</summary>
    Bbox,
}

/// <summary>COCO evaluation (mmdetection <c>CocoMetric</c>).</summary>
public sealed record EvaluationConfig
{
    [Description("COCO metric: bbox, the only one (no mask head); kept for mmdetection's config shape.")]
    public EvalMetric Metric { get; init; } = EvalMetric.Bbox;

    [Description("Also log the per-class AP table at each validation (always in eval/epoch_N/metrics.json).")]
    public bool Classwise { get; init; }
}
