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
    /// <summary>Metric. Reference: bbox.</summary>
    [Description("Metric.")]
    public EvalMetric Metric { get; init; } = EvalMetric.Bbox;

    /// <summary>Also print per-class AP. Reference: false.</summary>
    [Description("Also print per-class AP.")]
    public bool Classwise { get; init; }
}
