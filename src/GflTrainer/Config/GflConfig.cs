using System.ComponentModel;

namespace GflTrainer.Config;

/// <summary>The whole resolved configuration of a run: a tree of immutable records whose defaults equal
/// mmdetection's <c>gfl_r50_fpn_1x_coco</c>. YAML keys are the property names in snake_case; only
/// <see cref="ConfigLoader"/> and <see cref="ConfigWriter"/> know YAML.</summary>
public sealed record GflConfig
{
    [Description("Detector: backbone, neck, head, assigner, test-time post-processing.")]
    public ModelConfig Model { get; init; } = new();

    [Description("Datasets and input pipeline.")]
    public DataConfig Data { get; init; } = new();

    [Description("Optimizer, schedule, precision, logging and checkpoint cadence.")]
    public TrainConfig Train { get; init; } = new();

    [Description("COCO evaluation.")]
    public EvaluationConfig Evaluation { get; init; } = new();

    [Description("Work directory, device, log level.")]
    public RuntimeConfig Runtime { get; init; } = new();
}
