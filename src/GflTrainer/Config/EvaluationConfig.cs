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

    [Description("Write the evaluation plots into each eval folder (PR curves, confusion matrix, per-class AP, a mosaic of " +
        "val images with ground truth and predictions); report.html shows the latest.")]
    public bool Plots { get; init; } = true;

    [Description("Confusion matrix: detections below this score are not counted (mmdetection's confusion_matrix.py: 0.3).")]
    [ConfigRange(0, 1)]
    public double ConfusionScoreThr { get; init; } = 0.3;

    [Description("Confusion matrix: a detection matches a ground truth at IoU >= this (mmdetection's tp_iou_thr 0.5).")]
    [ConfigRange(0, 1, MinExclusive = true)]
    public double ConfusionIouThr { get; init; } = 0.5;

    [Description("Images in the evaluation mosaic (spread evenly over the split; 0: none).")]
    [ConfigRange(0, 64)]
    public int MosaicImages { get; init; } = 16;

    [Description("Mosaic: predictions below this score are not drawn.")]
    [ConfigRange(0, 1)]
    public double MosaicScoreThr { get; init; } = 0.3;

    [Description("At the start of a run, write gfl data stats of the train and val splits into the work dir's data_stats/ " +
        "(box sizes after the resize, anchor coverage; shown in report.html). Skipped above 20000 images: run gfl data stats.")]
    public bool DataStats { get; init; } = true;
}
