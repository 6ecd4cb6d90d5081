using System.ComponentModel;

namespace GflTrainer.Config;

/// <summary>The whole resolved configuration of a run: a tree of immutable records whose defaults equal
/// mmdetection's <c>gfl_r50_fpn_1x_coco</c>. YAML keys are the property names in snake_case; only
/// <see cref="ConfigLoader"/> and <see cref="ConfigWriter"/> know YAML.</summary>
public sealed record GflConfig
{
    /// <summary>Detector architecture, target assignment, loss weights and test-time post-processing.</summary>
    [Description("Detector: backbone, neck, head, assigner, test-time post-processing.")]
    public ModelConfig Model { get; init; } = new();

    /// <summary>Datasets and the input pipeline.</summary>
    [Description("Datasets and input pipeline.")]
    public DataConfig Data { get; init; } = new();

    /// <summary>Optimizer, learning-rate schedule, checkpointing.</summary>
    [Description("Optimizer, schedule, precision, logging and checkpoint cadence.")]
    public TrainConfig Train { get; init; } = new();

    /// <summary>COCO evaluation settings.</summary>
    [Description("COCO evaluation.")]
    public EvaluationConfig Evaluation { get; init; } = new();

    /// <summary>Where and on what a run executes.</summary>
    [Description("Work directory, device, log level.")]
    public RuntimeConfig Runtime { get; init; } = new();
}
