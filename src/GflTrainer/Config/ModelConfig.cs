using System.ComponentModel;

namespace GflTrainer.Config;

/// <summary>The GFL detector (gfl_spec.md §1–4, §6.3): ResNet backbone, FPN neck, GFL head, ATSS assigner and
/// test-time post-processing.</summary>
public sealed record ModelConfig
{
    [Description("ResNet backbone.")]
    public BackboneConfig Backbone { get; init; } = new();

    [Description("Feature pyramid network.")]
    public NeckConfig Neck { get; init; } = new();

    [Description("Dense head (gfl, atss or retinanet): towers, anchors, distribution range, loss weights.")]
    public HeadConfig Head { get; init; } = new();

    [Description("Target assignment: ATSS (gfl and atss heads) or MaxIoU (retinanet).")]
    public AssignerConfig Assigner { get; init; } = new();

    [Description("Test-time post-processing (mmdetection test_cfg).")]
    public PostprocessConfig Test { get; init; } = new();
}

/// <summary>mmdetection <c>ResNet(depth=50, num_stages=4, out_indices=(0,1,2,3), style='pytorch')</c>.</summary>
public sealed record BackboneConfig
{
    [Description("ResNet depth: 18, 34 (basic blocks), 50, 101, 152 (bottlenecks).")]
    [ConfigAllowed(18, 34, 50, 101, 152)]
    public int Depth { get; init; } = 50;

    [Description("Frozen stages: -1 none, 0 stem, k = stem + layer1..layerk.")]
    [ConfigRange(-1, 4)]
    public int FrozenStages { get; init; } = 1;

    [Description("Keep all backbone BatchNorms in eval mode while training (needs pretrained statistics).")]
    public bool NormEval { get; init; } = true;

    [Description("Backbone weights file (torchvision names, safetensors; the reference uses IMAGENET1K_V1), or null to train from scratch.")]
    public string? Pretrained { get; init; }

    [Description("Fail on missing or unexpected backbone keys (fc.* is always ignored).")]
    public bool Strict { get; init; } = true;

    [Description("ResNet stem width (64 = standard; smaller only for tiny from-scratch models).")]
    [ConfigRange(4, 64)]
    public int BaseChannels { get; init; } = 64;

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
    [Description("Channels of every pyramid level.")]
    [ConfigRange(1, 4096)]
    public int OutChannels { get; init; } = 256;

    [Description("First backbone stage fed to the FPN (1 = C3); only 1 is implemented.")]
    [ConfigRange(0, 3)]
    public int StartLevel { get; init; } = 1;

    [Description("Number of pyramid outputs (P3..P7 = 5); must equal the number of head strides.")]
    [ConfigRange(1, 8)]
    public int NumOuts { get; init; } = 5;

    [Description("Source of the extra stride-2 levels; only on_output is implemented.")]
    public ExtraConvsSource AddExtraConvs { get; init; } = ExtraConvsSource.OnOutput;

    [Description("ReLU before the second and later extra convolutions; only false is implemented.")]
    public bool ReluBeforeExtraConvs { get; init; }
}

/// <summary>Which dense head the detector has (the GFL paper's baseline family, all on the same backbone and FPN).</summary>
public enum HeadType
{
    /// <summary>GFL (Li et al. 2020): QFL on the joint class-IoU score, General distribution box regression with DFL.</summary>
    Gfl,
    /// <summary>ATSS (Zhang et al. 2020): Focal Loss, DeltaXYWH box deltas with GIoU, a centerness branch.</summary>
    Atss,
    /// <summary>RetinaNet (Lin et al. 2017): 9 anchors per location, MaxIoU assignment, Focal Loss, L1 on the deltas.</summary>
    Retinanet,
}

/// <summary>RetinaNet's box regression loss.</summary>
public enum BoxLossType
{
    /// <summary>L1 on the encoded deltas (mmdetection's retinanet_r50_fpn_1x_coco).</summary>
    L1,
    /// <summary>GIoU on the decoded boxes (reg_decoded_bbox=True).</summary>
    Giou,
}

/// <summary>mmdetection <c>GFLHead</c> / <c>ATSSHead</c> with its anchor generator and losses (gfl_spec.md §3, §5).</summary>
public sealed record HeadConfig
{
    [Description("Head: gfl (mmdetection GFLHead, the default), atss (ATSSHead: Focal Loss, delta boxes with GIoU, centerness) or retinanet (RetinaHead: 9 anchors, MaxIoU assigner, Focal Loss, L1).")]
    public HeadType Type { get; init; } = HeadType.Gfl;

    [Description("Foreground classes (sigmoid, no background channel).")]
    [ConfigRange(1, 100000)]
    public int NumClasses { get; init; } = 80;

    [Description("Conv-GN-ReLU layers per tower (cls and reg); conv-ReLU without norm for retinanet.")]
    [ConfigRange(0, 16)]
    public int StackedConvs { get; init; } = 4;

    [Description("Channels inside the towers.")]
    [ConfigRange(1, 4096)]
    public int FeatChannels { get; init; } = 256;

    [Description("GroupNorm groups in the towers; must divide feat_channels (gfl and atss heads).")]
    [ConfigRange(1, 4096)]
    public int NormGroups { get; init; } = 32;

    [Description("Largest distance bin n (n + 1 bins per side, stride units; gfl head only).")]
    [ConfigRange(1, 256)]
    public int RegMax { get; init; } = 16;

    [Description("Prior stride per pyramid level: 8, 16, 32, ... (fixed by the backbone and FPN).")]
    [ConfigRange(1, 4096)]
    [ConfigLength(1, 8)]
    public IReadOnlyList<int> Strides { get; init; } = [8, 16, 32, 64, 128];

    [Description("Anchor side = octave_base_scale x stride (gfl and atss: 8; retinanet: 4).")]
    [ConfigRange(0, 1024, MinExclusive = true)]
    public double OctaveBaseScale { get; init; } = 8;

    [Description("Anchor scales per octave: octave_base_scale x 2^(i/n), i < n (gfl and atss: 1; retinanet: 3).")]
    [ConfigRange(1, 16)]
    public int ScalesPerOctave { get; init; } = 1;

    [Description("Anchor aspect ratios h/w (gfl and atss: [1.0]; retinanet: [0.5, 1.0, 2.0]).")]
    [ConfigRange(0, 100, MinExclusive = true)]
    [ConfigLength(1, 16)]
    public IReadOnlyList<double> Ratios { get; init; } = [1.0];

    [Description("Initial foreground probability; classifier bias = -log((1-p)/p).")]
    [ConfigRange(0, 1, MinExclusive = true, MaxExclusive = true)]
    public double PriorProb { get; init; } = 0.01;

    [Description("Loss weights and the QFL focusing parameter.")]
    public LossConfig Loss { get; init; } = new();
}

/// <summary>The classification loss of the head.</summary>
public enum ClsLossType
{
    /// <summary>Quality Focal Loss (GFL): the target is the IoU of the predicted box on the gt class.</summary>
    Qfl,
    /// <summary>Focal Loss (RetinaNet): one-hot targets, α-balanced; the GFL paper's ablation baseline.</summary>
    Focal,
}

/// <summary>Weights of the head's losses: GFL's three (gfl_spec.md §5.2–5.4), ATSS's Focal Loss, GIoU and centerness.</summary>
public sealed record LossConfig
{
    [Description("Classification loss of the gfl head: qfl or focal (sigmoid Focal Loss with one-hot targets, mmdetection's FocalLoss; the GFL paper's ablation). The atss and retinanet heads always use focal.")]
    public ClsLossType Cls { get; init; } = ClsLossType.Qfl;

    [Description("Focal Loss weight (cls: focal, and the atss and retinanet heads).")]
    [ConfigRange(0, double.PositiveInfinity)]
    public double FocalWeight { get; init; } = 1.0;

    [Description("Focal Loss focusing exponent gamma in (1 - p_t)^gamma (cls: focal, and the atss and retinanet heads).")]
    [ConfigRange(0, double.PositiveInfinity)]
    public double FocalGamma { get; init; } = 2.0;

    [Description("Focal Loss foreground weight alpha (1 - alpha for background; cls: focal, and the atss head).")]
    [ConfigRange(0, 1)]
    public double FocalAlpha { get; init; } = 0.25;

    [Description("Quality focal loss weight.")]
    [ConfigRange(0, double.PositiveInfinity)]
    public double QflWeight { get; init; } = 1.0;

    [Description("QFL focusing exponent beta in |y - sigma|^beta.")]
    [ConfigRange(0, double.PositiveInfinity)]
    public double QflBeta { get; init; } = 2.0;

    [Description("Distribution focal loss weight (gfl head).")]
    [ConfigRange(0, double.PositiveInfinity)]
    public double DflWeight { get; init; } = 0.25;

    [Description("GIoU loss weight (gfl and atss heads; retinanet with box: giou).")]
    [ConfigRange(0, double.PositiveInfinity)]
    public double GiouWeight { get; init; } = 2.0;

    [Description("Centerness BCE weight (atss head).")]
    [ConfigRange(0, double.PositiveInfinity)]
    public double CenternessWeight { get; init; } = 1.0;

    [Description("Box loss of the retinanet head: l1 on the deltas (the reference) or giou on the decoded boxes (giou_weight).")]
    public BoxLossType Box { get; init; } = BoxLossType.L1;

    [Description("L1 box loss weight (retinanet head, box: l1).")]
    [ConfigRange(0, double.PositiveInfinity)]
    public double L1Weight { get; init; } = 1.0;
}

/// <summary>ATSS assigner (gfl_spec.md §4) of the gfl and atss heads; MaxIoU assigner of the retinanet head.</summary>
public sealed record AssignerConfig
{
    [Description("ATSS candidates per level (k), nearest anchor centres (gfl and atss heads).")]
    [ConfigKey("topk")]
    [ConfigRange(1, 1000)]
    public int TopK { get; init; } = 9;

    [Description("MaxIoU assigner (retinanet head): an anchor whose best IoU reaches this is positive.")]
    [ConfigRange(0, 1)]
    public double PosIouThr { get; init; } = 0.5;

    [Description("MaxIoU assigner (retinanet head): an anchor whose best IoU is below this is negative; in between ignored.")]
    [ConfigRange(0, 1)]
    public double NegIouThr { get; init; } = 0.4;

    [Description("MaxIoU assigner (retinanet head): a gt also takes its best anchors when their IoU reaches this.")]
    [ConfigRange(0, 1)]
    public double MinPosIou { get; init; } = 0.0;
}

/// <summary>Test-time post-processing, mmdetection <c>test_cfg</c> (gfl_spec.md §6.3).</summary>
public sealed record PostprocessConfig
{
    [Description("(prior, class) pairs kept per level before NMS.")]
    [ConfigRange(1, double.PositiveInfinity)]
    public int NmsPre { get; init; } = 1000;

    [Description("Drop boxes whose width or height <= this (pixels).")]
    [ConfigRange(0, double.PositiveInfinity)]
    public double MinBboxSize { get; init; }

    [Description("Score threshold before NMS.")]
    [ConfigRange(0, 1, MaxExclusive = true)]
    public double ScoreThr { get; init; } = 0.05;

    [Description("Class-aware NMS IoU threshold.")]
    [ConfigRange(0, 1, MinExclusive = true)]
    public double NmsIou { get; init; } = 0.6;

    [Description("Detections kept per image after NMS.")]
    [ConfigRange(1, double.PositiveInfinity)]
    public int MaxPerImg { get; init; } = 100;
}
