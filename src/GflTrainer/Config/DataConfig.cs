using System.ComponentModel;

namespace GflTrainer.Config;

/// <summary>Datasets and the input pipeline (gfl_spec.md §6.2–6.3). Relative paths are resolved against the
/// working directory, as mmdetection does with <c>data_root='data/coco/'</c>, not against the config file.</summary>
public sealed record DataConfig
{
    /// <summary>Training split. Reference: COCO train2017.</summary>
    [Description("Training split.")]
    public SplitConfig Train { get; init; } = new()
    {
        AnnFile = "data/coco/annotations/instances_train2017.json",
        ImgPrefix = "data/coco/train2017/",
    };

    /// <summary>Validation split (evaluated during training). Reference: COCO val2017.</summary>
    [Description("Validation split, evaluated during training.")]
    public SplitConfig Val { get; init; } = new();

    /// <summary>Test split (<c>gfl eval</c> default). Reference: COCO val2017.</summary>
    [Description("Test split (gfl eval default).")]
    public SplitConfig Test { get; init; } = new();

    /// <summary>Resize bounds [long, short]: with keep_ratio the factor is min(long/long_side, short/short_side).
    /// Reference: [1333, 800].</summary>
    [Description("Resize bounds [long, short]; scale = min(long/long_side, short/short_side) with keep_ratio.")]
    [ConfigLength(2, 2)]
    [ConfigRange(1, 100000)]
    public IReadOnlyList<int> ImgScale { get; init; } = [1333, 800];

    /// <summary>Multi-scale training (mmdetection's img_scale list + multiscale_mode), or null for the single
    /// <see cref="ImgScale"/>. Test always uses <see cref="ImgScale"/>.</summary>
    [Description("Multi-scale training, or null to train at img_scale only; test always uses img_scale.")]
    public MultiscaleConfig? Multiscale { get; init; }

    /// <summary>Keep the aspect ratio when resizing. Reference: true.</summary>
    [Description("Keep the aspect ratio when resizing.")]
    public bool KeepRatio { get; init; } = true;

    /// <summary>Probability of a horizontal flip in training. Reference: 0.5.</summary>
    [Description("Horizontal flip probability (training only).")]
    [ConfigRange(0, 1)]
    public double FlipProb { get; init; } = 0.5;

    /// <summary>Per-channel mean subtracted after the RGB conversion (RGB order, 0..255). Reference: ImageNet.</summary>
    [Description("Per-channel mean, RGB order, 0..255 scale.")]
    [ConfigLength(3, 3)]
    public IReadOnlyList<double> Mean { get; init; } = [123.675, 116.28, 103.53];

    /// <summary>Per-channel standard deviation (RGB order, 0..255). Reference: ImageNet.</summary>
    [Description("Per-channel std, RGB order, 0..255 scale.")]
    [ConfigLength(3, 3)]
    [ConfigRange(0, double.PositiveInfinity, MinExclusive = true)]
    public IReadOnlyList<double> Std { get; init; } = [58.395, 57.12, 57.375];

    /// <summary>Convert decoded BGR to RGB before normalizing. Reference: true.</summary>
    [Description("Convert BGR to RGB before normalizing.")]
    public bool ToRgb { get; init; } = true;

    /// <summary>Pad height and width (bottom/right, value 0 after normalization) to a multiple of this.
    /// Reference: 32.</summary>
    [Description("Pad bottom/right to a multiple of this (value 0 after normalization).")]
    [ConfigRange(1, 1024)]
    public int PadDivisor { get; init; } = 32;

    /// <summary>Training images per optimizer step. The reference runs 8 GPUs × 2 images, and the losses are
    /// normalized over all 16 (gfl_spec.md §5.5), so one process with 16 images is the same step.</summary>
    [Description("Training images per optimizer step (reference: 8 GPUs x 2 = 16).")]
    [ConfigRange(1, 4096)]
    public int BatchSize { get; init; } = 16;

    /// <summary>Images per evaluation batch. Reference: 1.</summary>
    [Description("Images per evaluation batch.")]
    [ConfigRange(1, 4096)]
    public int ValBatchSize { get; init; } = 1;

    /// <summary>Background threads that decode and transform images. Reference: 2 per GPU.</summary>
    [Description("Background threads decoding and transforming images (0 = inline).")]
    [ConfigRange(0, 256)]
    public int Workers { get; init; } = 2;

    /// <summary>Batches prepared ahead of the training step. PyTorch DataLoader default: 2.</summary>
    [Description("Batches prepared ahead of the training step.")]
    [ConfigRange(1, 64)]
    public int Prefetch { get; init; } = 2;

    /// <summary>Group training images by orientation (w &gt; h or not) when batching, as mmdetection's
    /// GroupSampler does. Reference: true.</summary>
    [Description("Batch landscape and portrait images separately (mmdet GroupSampler).")]
    public bool GroupByAspectRatio { get; init; } = true;

    /// <summary>Drop training images without usable boxes. Reference: true.</summary>
    [Description("Drop training images without usable boxes.")]
    public bool FilterEmptyGt { get; init; } = true;

    /// <summary>Drop training images whose shorter side is below this (pixels). Reference: 32.</summary>
    [Description("Drop training images whose shorter side is below this (pixels).")]
    [ConfigRange(0, 100000)]
    public int MinSize { get; init; } = 32;

    /// <summary>Unreadable images tolerated (skipped with a warning) before a run fails. mmdetection fails on the
    /// first: 0.</summary>
    [Description("Unreadable images skipped with a warning before the run fails.")]
    [ConfigRange(0, double.PositiveInfinity)]
    public int MaxBadImages { get; init; }

    /// <summary>When set and <c>train.ann_file</c> does not exist, <c>gfl train</c> first writes the embedded synthetic
    /// shapes dataset (deterministic) into this folder. Used by the quickstart so it needs no download.</summary>
    [Description("Folder to generate the synthetic shapes dataset into when train.ann_file is missing, or null.")]
    public string? Synthesize { get; init; }
}

/// <summary>One dataset split in COCO instances format.</summary>
public sealed record SplitConfig
{
    /// <summary>COCO instances JSON. Default: COCO val2017.</summary>
    [Description("COCO instances JSON.")]
    public string AnnFile { get; init; } = "data/coco/annotations/instances_val2017.json";

    /// <summary>Folder that the JSON's <c>file_name</c> entries are relative to. Default: COCO val2017.</summary>
    [Description("Folder the JSON's file_name entries are relative to.")]
    public string ImgPrefix { get; init; } = "data/coco/val2017/";
}

/// <summary>How a training scale is drawn from <see cref="MultiscaleConfig.Scales"/>.</summary>
public enum MultiscaleMode
{
    /// <summary>Long and short bound each drawn uniformly between the two given scales (mmdet 'range').</summary>
    Range,
    /// <summary>One of the given scales, uniformly (mmdet 'value').</summary>
    Value,
}

/// <summary>Multi-scale training, e.g. the 2x ms schedule: <c>scales: [[1333, 480], [1333, 800]]</c>, mode range.</summary>
public sealed record MultiscaleConfig
{
    /// <summary>range: interpolate between exactly two scales; value: pick one of the listed scales.</summary>
    [Description("range: draw between two scales; value: pick one of the scales.")]
    public MultiscaleMode Mode { get; init; } = MultiscaleMode.Range;

    /// <summary>Candidate [long, short] resize bounds.</summary>
    [Description("Candidate [long, short] resize bounds.")]
    [ConfigLength(1, 64)]
    public IReadOnlyList<IReadOnlyList<int>> Scales { get; init; } = [[1333, 480], [1333, 800]];
}
