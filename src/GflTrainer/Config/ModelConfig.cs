using System.ComponentModel;

namespace GflTrainer.Config;

/// <summary>The GFL detector (gfl_spec.md §1–4, §6.3): ResNet backbone, FPN neck, GFL head, ATSS assigner and
/// test-time post-processing.</summary>
public sealed record ModelConfig
{
    /// <summary>ResNet backbone.</summary>
    [Description("ResNet backbone.")]
    public BackboneConfig Backbone { get; init; } = new();

    /// <summary>Feature pyramid network.</summary>
    [Description("Feature pyramid network.")]
    public NeckConfig Neck { get; init; } = new();

    /// <summary>GFL head: towers, priors, distribution range, loss weights.</summary>
    [Description("GFL head: towers, priors, distribution range, loss weights.")]
    public HeadConfig Head { get; init; } = new();

    /// <summary>ATSS target assignment.</summary>
    [Description("ATSS target assignment.")]
    public AssignerConfig Assigner { get; init; } = new();

    /// <summary>Test-time post-processing (mmdetection's <c>test_cfg</c>).</summary>
    [Description("Test-time post-processing (mmdetection test_cfg).")]
    public PostprocessConfig Test { get; init; } = new();
}

/// <summary>mmdetection <c>ResNet(depth=50, num_stages=4, out_indices=(0,1,2,3), style='pytorch')</c>.</summary>
public sealed record BackboneConfig
{
    /// <summary>ResNet depth: 18 or 34 (basic blocks), 50, 101 or 152 (bottlenecks). Reference: 50.</summary>
    [Description("ResNet depth: 18, 34 (basic blocks), 50, 101, 152 (bottlenecks).")]
    [ConfigAllowed(18, 34, 50, 101, 152)]
    public int Depth { get; init; } = 50;

    /// <summary>Stages whose parameters are frozen and kept in eval mode: -1 none, 0 the stem, k the stem and
    /// layer1..layerk. Reference: 1.</summary>
    [Description("Frozen stages: -1 none, 0 stem, k = stem + layer1..layerk.")]
    [ConfigRange(-1, 4)]
    public int FrozenStages { get; init; } = 1;

    /// <summary>Keep every backbone BatchNorm in eval mode while training (running statistics never change).
    /// Reference: true. Only sensible with pretrained weights.</summary>
    [Description("Keep all backbone BatchNorms in eval mode while training (needs pretrained statistics).")]
    public bool NormEval { get; init; } = true;

    /// <summary>Backbone weights to load (torchvision ResNet names, safetensors), or null to train from scratch.
    /// The reference uses torchvision's IMAGENET1K_V1 ResNet-50.</summary>
    [Description("Backbone weights file (torchvision names, safetensors), or null to train from scratch.")]
    public string? Pretrained { get; init; }

    /// <summary>Fail when the weights file misses a backbone parameter or has an unexpected one (a classifier
    /// <c>fc.*</c> is always ignored).</summary>
    [Description("Fail on missing or unexpected backbone keys (fc.* is always ignored).")]
    public bool Strict { get; init; } = true;

    /// <summary>Stem width; every stage scales with it (64 = torchvision's ResNets, the only width pretrained weights
    /// exist for). Narrower backbones are for tiny from-scratch models and tests.</summary>
    [Description("ResNet stem width (64 = standard; smaller only for tiny from-scratch models).")]
    [ConfigRange(4, 64)]
    public int BaseChannels { get; init; } = 64;

    /// <summary>From scratch, start the last BatchNorm of every residual block at weight and bias 0 (each block
    /// begins as the identity), as mmdetection's ResNet does by default (<c>zero_init_residual=True</c>); pretrained
    /// weights replace it.</summary>
    [Description("From scratch: start each block's last BN at 0 (mmdetection's default; pretrained weights replace it).")]
    public bool ZeroInitResidual { get; init; } = true;
}

/// <summary>Which tensor mmdetection's FPN feeds to its first extra (stride-2) convolution.</summary>
public enum ExtraConvsSource
{
    /// <summary>No extra convolutions: extra levels by max-pooling.</summary>
    None,
    /// <summary>The last backbone feature (C5).</summary>
    OnInput,
    /// <summary>The last lateral (1×1) output.</summary>
    OnLateral,
    /// <summary>The last FPN output (P5); the reference.</summary>
    OnOutput,
}

/// <summary>mmdetection <c>FPN(in_channels=[256,512,1024,2048], out_channels=256, start_level=1,
/// add_extra_convs='on_output', num_outs=5)</c>; input channels follow from the backbone depth.</summary>
public sealed record NeckConfig
{
    /// <summary>Channels of every pyramid level. Reference: 256.</summary>
    [Description("Channels of every pyramid level.")]
    [ConfigRange(1, 4096)]
    public int OutChannels { get; init; } = 256;

    /// <summary>First backbone stage used (1 = C3, so C2 is computed but unused). Reference: 1.</summary>
    [Description("First backbone stage fed to the FPN (1 = C3).")]
    [ConfigRange(0, 3)]
    public int StartLevel { get; init; } = 1;

    /// <summary>Number of output levels (P3..P7 = 5). Reference: 5.</summary>
    [Description("Number of pyramid outputs (P3..P7 = 5); must equal the number of head strides.")]
    [ConfigRange(1, 8)]
    public int NumOuts { get; init; } = 5;

    /// <summary>Source of the extra levels. Reference: on_output.</summary>
    [Description("Source of the extra stride-2 levels.")]
    public ExtraConvsSource AddExtraConvs { get; init; } = ExtraConvsSource.OnOutput;

    /// <summary>ReLU before each extra convolution after the first. Reference: false (mmdetection default).</summary>
    [Description("ReLU before the second and later extra convolutions.")]
    public bool ReluBeforeExtraConvs { get; init; }
}

/// <summary>mmdetection <c>GFLHead</c> with its anchor generator and losses (gfl_spec.md §3, §5).</summary>
public sealed record HeadConfig
{
    /// <summary>Foreground classes (sigmoid outputs, no background channel). Reference: 80 (COCO).</summary>
    [Description("Foreground classes (sigmoid, no background channel).")]
    [ConfigRange(1, 100000)]
    public int NumClasses { get; init; } = 80;

    /// <summary>Conv-GN-ReLU layers in each of the classification and regression towers. Reference: 4.</summary>
    [Description("Conv-GN-ReLU layers per tower (cls and reg).")]
    [ConfigRange(0, 16)]
    public int StackedConvs { get; init; } = 4;

    /// <summary>Channels inside the towers. Reference: 256.</summary>
    [Description("Channels inside the towers.")]
    [ConfigRange(1, 4096)]
    public int FeatChannels { get; init; } = 256;

    /// <summary>GroupNorm groups in the towers; must divide feat_channels. Reference: 32.</summary>
    [Description("GroupNorm groups in the towers; must divide feat_channels.")]
    [ConfigRange(1, 4096)]
    public int NormGroups { get; init; } = 32;

    /// <summary>Largest distance bin n: each side is a distribution over 0..n (n + 1 bins), in stride units.
    /// Reference: 16.</summary>
    [Description("Largest distance bin n (n + 1 bins per side, stride units).")]
    [ConfigRange(1, 256)]
    public int RegMax { get; init; } = 16;

    /// <summary>Prior stride of each pyramid level. Reference: [8, 16, 32, 64, 128].</summary>
    [Description("Prior stride per pyramid level.")]
    [ConfigRange(1, 4096)]
    [ConfigLength(1, 8)]
    public IReadOnlyList<int> Strides { get; init; } = [8, 16, 32, 64, 128];

    /// <summary>Anchor side = octave_base_scale × stride (used by ATSS). Reference: 8.</summary>
    [Description("Anchor side = octave_base_scale x stride (ATSS anchors).")]
    [ConfigRange(0, 1024, MinExclusive = true)]
    public double OctaveBaseScale { get; init; } = 8;

    /// <summary>Prior probability that sets the classifier bias −log((1 − p)/p). Reference: 0.01.</summary>
    [Description("Initial foreground probability; classifier bias = -log((1-p)/p).")]
    [ConfigRange(0, 1, MinExclusive = true, MaxExclusive = true)]
    public double PriorProb { get; init; } = 0.01;

    /// <summary>Loss weights and the QFL focusing parameter.</summary>
    [Description("Loss weights and the QFL focusing parameter.")]
    public LossConfig Loss { get; init; } = new();
}

/// <summary>Weights of the three GFL losses (gfl_spec.md §5.2–5.4).</summary>
public sealed record LossConfig
{
    /// <summary>Quality focal loss weight. Reference: 1.0.</summary>
    [Description("Quality focal loss weight.")]
    [ConfigRange(0, double.PositiveInfinity)]
    public double QflWeight { get; init; } = 1.0;

    /// <summary>QFL focusing exponent β in |y − σ|^β. Reference: 2.</summary>
    [Description("QFL focusing exponent beta in |y - sigma|^beta.")]
    [ConfigRange(0, double.PositiveInfinity)]
    public double QflBeta { get; init; } = 2.0;

    /// <summary>Distribution focal loss weight. Reference: 0.25.</summary>
    [Description("Distribution focal loss weight.")]
    [ConfigRange(0, double.PositiveInfinity)]
    public double DflWeight { get; init; } = 0.25;

    /// <summary>GIoU loss weight. Reference: 2.0.</summary>
    [Description("GIoU loss weight.")]
    [ConfigRange(0, double.PositiveInfinity)]
    public double GiouWeight { get; init; } = 2.0;
}

/// <summary>ATSS assigner (gfl_spec.md §4).</summary>
public sealed record AssignerConfig
{
    /// <summary>ATSS candidates per pyramid level (k in the paper), nearest by centre distance. Reference: 9.</summary>
    [Description("ATSS candidates per level (k), nearest anchor centres.")]
    [ConfigKey("topk")]
    [ConfigRange(1, 1000)]
    public int TopK { get; init; } = 9;
}

/// <summary>Test-time post-processing, mmdetection <c>test_cfg</c> (gfl_spec.md §6.3).</summary>
public sealed record PostprocessConfig
{
    /// <summary>Highest-scoring (prior, class) pairs kept per level before NMS. Reference: 1000.</summary>
    [Description("(prior, class) pairs kept per level before NMS.")]
    [ConfigRange(1, double.PositiveInfinity)]
    public int NmsPre { get; init; } = 1000;

    /// <summary>Boxes with width or height ≤ this (original-image pixels) are dropped. Reference: 0.</summary>
    [Description("Drop boxes whose width or height <= this (pixels).")]
    [ConfigRange(0, double.PositiveInfinity)]
    public double MinBboxSize { get; init; }

    /// <summary>Score threshold before NMS. Reference: 0.05.</summary>
    [Description("Score threshold before NMS.")]
    [ConfigRange(0, 1, MaxExclusive = true)]
    public double ScoreThr { get; init; } = 0.05;

    /// <summary>Class-aware NMS IoU threshold. Reference: 0.6.</summary>
    [Description("Class-aware NMS IoU threshold.")]
    [ConfigRange(0, 1, MinExclusive = true)]
    public double NmsIou { get; init; } = 0.6;

    /// <summary>Detections kept per image after NMS. Reference: 100.</summary>
    [Description("Detections kept per image after NMS.")]
    [ConfigRange(1, double.PositiveInfinity)]
    public int MaxPerImg { get; init; } = 100;
}
