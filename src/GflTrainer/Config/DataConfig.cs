using System.ComponentModel;

namespace GflTrainer.Config;

/// <summary>Datasets and the input pipeline (gfl_spec.md §6.2–6.3). Relative paths are resolved against the
/// working directory, as mmdetection does with <c>data_root='data/coco/'</c>, not against the config file.</summary>
public sealed record DataConfig
{
    [Description("Training split.")]
    public SplitConfig Train { get; init; } = new()
    {
        AnnFile = "data/coco/annotations/instances_train2017.json",
        ImgPrefix = "data/coco/train2017/",
    };

    [Description("Validation split, evaluated during training.")]
    public SplitConfig Val { get; init; } = new();

    [Description("Test split (gfl eval default).")]
    public SplitConfig Test { get; init; } = new();

    [Description("Resize bounds [long, short]; scale = min(long/long_side, short/short_side) with keep_ratio.")]
    [ConfigLength(2, 2)]
    [ConfigRange(1, 100000)]
    public IReadOnlyList<int> ImgScale { get; init; } = [1333, 800];

    [Description("Multi-scale training, or null to train at img_scale only; test always uses img_scale.")]
    public MultiscaleConfig? Multiscale { get; init; }

    [Description("Keep the aspect ratio when resizing; only true (mmdetection's default) is implemented.")]
    public bool KeepRatio { get; init; } = true;

    [Description("Horizontal flip probability (training only).")]
    [ConfigRange(0, 1)]
    public double FlipProb { get; init; } = 0.5;

    [Description("Per-channel mean subtracted after the RGB conversion (RGB order, 0..255 scale; default ImageNet).")]
    [ConfigLength(3, 3)]
    public IReadOnlyList<double> Mean { get; init; } = [123.675, 116.28, 103.53];

    [Description("Per-channel std, RGB order, 0..255 scale.")]
    [ConfigLength(3, 3)]
    [ConfigRange(0, double.PositiveInfinity, MinExclusive = true)]
    public IReadOnlyList<double> Std { get; init; } = [58.395, 57.12, 57.375];

    [Description("Convert BGR to RGB before normalizing; only true is implemented (images are decoded as RGB).")]
    public bool ToRgb { get; init; } = true;

    [Description("Pad bottom/right to a multiple of this (value 0 after normalization).")]
    [ConfigRange(1, 1024)]
    public int PadDivisor { get; init; } = 32;

    [Description("Training batches padded to: max, the batch's largest image (mmdetection); fixed, the largest shape the batch's orientation can take at the training scales (mmdetection's BatchFixedSizePad per aspect group): at most three input shapes in a run, so cudnn_benchmark tunes once per shape, at the cost of padded pixels (and the head's GroupNorm statistics span the padding). Evaluation always pads to the batch's largest image.")]
    public BatchShapeMode BatchShape { get; init; } = BatchShapeMode.Max;

    [Description("Training images per optimizer step. The reference runs 8 GPUs x 2 images and normalises the losses over all 16, so one process with 16 images takes the same step.")]
    [ConfigRange(1, 4096)]
    public int BatchSize { get; init; } = 16;

    [Description("Images per evaluation batch.")]
    [ConfigRange(1, 4096)]
    public int ValBatchSize { get; init; } = 1;

    [Description("Background threads decoding and transforming images (0 = inline).")]
    [ConfigRange(0, 256)]
    public int Workers { get; init; } = 2;

    [Description("Batches prepared ahead of the training step.")]
    [ConfigRange(1, 64)]
    public int Prefetch { get; init; } = 2;

    [Description("Batch landscape and portrait images separately (mmdet GroupSampler); false mixes them in a batch.")]
    public bool GroupByAspectRatio { get; init; } = true;

    [Description("Drop training images without usable boxes.")]
    public bool FilterEmptyGt { get; init; } = true;

    [Description("Drop training images whose shorter side is below this (pixels).")]
    [ConfigRange(0, 100000)]
    public int MinSize { get; init; } = 32;

    [Description("Unreadable images skipped with a warning before the run fails (mmdetection: 0, fail on the first).")]
    [ConfigRange(0, double.PositiveInfinity)]
    public int MaxBadImages { get; init; }

    [Description("Folder to generate the synthetic shapes dataset into when train.ann_file is missing, or null.")]
    public string? Synthesize { get; init; }
}

/// <summary>One dataset split in COCO instances format.</summary>
public sealed record SplitConfig
{
    [Description("COCO instances JSON.")]
    public string AnnFile { get; init; } = "data/coco/annotations/instances_val2017.json";

    [Description("Folder the JSON's file_name entries are relative to.")]
    public string ImgPrefix { get; init; } = "data/coco/val2017/";
}

/// <summary>What a training batch is padded to (<see cref="DataConfig.BatchShape"/>).</summary>
public enum BatchShapeMode
{
    /// <summary>The batch's largest padded image (mmdetection's default).</summary>
    Max,
    /// <summary>The largest padded shape of the batch's orientation at the training scales.</summary>
    Fixed,
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
    [Description("range: draw between two scales; value: pick one of the scales.")]
    public MultiscaleMode Mode { get; init; } = MultiscaleMode.Range;

    [Description("Candidate [long, short] resize bounds.")]
    [ConfigLength(1, 64)]
    public IReadOnlyList<IReadOnlyList<int>> Scales { get; init; } = [[1333, 480], [1333, 800]];
}
