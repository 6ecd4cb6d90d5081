using GflTrainer.Config;
using GflTrainer.Data.Transforms;
using GflTrainer.Training.Losses;
using Serilog;
using TorchSharp;
using GflTrainer.Coco;

namespace GflTrainer.Data;

/// <summary>Configuration -> datasets and loaders (the only place that reads <see cref="DataConfig"/>).</summary>
internal static class DataPipelineFactory
{
    /// <summary>Writes the embedded synthetic dataset when <c>data.synthesize</c> names a folder and the training
    /// annotations are missing, so the quickstart needs no download.</summary>
    public static void SynthesizeIfRequested(DataConfig data, ILogger log)
    {
        if (string.IsNullOrEmpty(data.Synthesize) || File.Exists(data.Train.AnnFile)) return;
        log.Information("{File} not found: generating the synthetic shapes dataset in {Dir}", data.Train.AnnFile, data.Synthesize);
        SyntheticShapes.Write(data.Synthesize);
        if (!File.Exists(data.Train.AnnFile))
            throw new GflConfigException($"data.synthesize wrote {data.Synthesize}, but data.train.ann_file {data.Train.AnnFile} is still missing: point it into that folder") { Key = "data.synthesize" };
    }

    public static CocoDataset LoadTrainSet(DataConfig data, ILogger log)
    {
        if (!File.Exists(data.Train.AnnFile))
            throw new GflConfigException($"data.train.ann_file: {data.Train.AnnFile} not found") { Key = "data.train.ann_file" };
        var ds = TrainingView(CocoAnnotations.Load(data.Train.AnnFile), data.Train.ImgPrefix, data);
        log.Information("train set {File}: {Stats}", data.Train.AnnFile, ds.Stats);
        return ds;
    }

    /// <summary>A split as training reads it: data.filter_empty_gt and data.min_size drop images (or nothing is
    /// dropped when filter_empty_gt is false); <c>gfl data stats</c> reports what this leaves out.</summary>
    public static CocoDataset TrainingView(CocoAnnotations coco, string imgPrefix, DataConfig data) => data.FilterEmptyGt
        ? CocoDataset.ForTraining(coco, imgPrefix, data.MinSize)
        : CocoDataset.ForEvaluation(coco, imgPrefix);

    /// <summary>An evaluation split, parsed once: the images for the loader and the ground truth for the metric.</summary>
    public static (CocoDataset Dataset, CocoGroundTruth GroundTruth) LoadEvalSet(SplitConfig split, DataConfig data, CategoryMap? categories, ILogger log)
    {
        if (!File.Exists(split.AnnFile)) throw new GflConfigException($"annotation file not found: {split.AnnFile}");
        var coco = CocoAnnotations.Load(split.AnnFile);
        var ds = CocoDataset.ForEvaluation(coco, split.ImgPrefix, categories);
        log.Information("eval set {File}: {Count} images", split.AnnFile, ds.Count);
        return (ds, CocoGroundTruth.FromAnnotations(coco));
    }

    /// <param name="targets">builds each batch's training targets in the loader (<c>runtime.targets</c>: loader), or null.</param>
    public static DetectionLoader CreateTrainLoader(DataConfig data, IDetectionDataset ds, LoaderOptions options, torch.Device device, ILogger log,
        HostTargets? targets = null)
    {
        var scales = TrainScales(data);
        var fixedShape = data.BatchShape == BatchShapeMode.Fixed ? FixedBatchShape.Of(scales, new Pad(data.PadDivisor)) : null;
        if (fixedShape is not null)
            log.Information("data.batch_shape fixed: training batches padded to {Shapes} (HxW: landscape, portrait, mixed orientations)",
                string.Join(", ", fixedShape.Shapes.Distinct().Select(s => $"{s.H}x{s.W}")));
        var collator = Collator(data, device, fixedShape);
        return DetectionLoader.Create(ds, new DetectionTransform(scales, data.FlipProb), collator, options, training: true, log, targets);
    }

    public static DetectionLoader CreateEvalLoader(DataConfig data, IDetectionDataset ds, LoaderOptions options, torch.Device device, ILogger log)
    {
        return DetectionLoader.Create(ds, DetectionTransform.Eval(TestScale(data)), Collator(data, device), options, training: false, log);
    }

    /// <param name="fixedShape">training with <c>data.batch_shape: fixed</c>; evaluation and prediction pad each batch to
    /// its largest image, as the reference.</param>
    public static BatchCollator Collator(DataConfig data, torch.Device device, FixedBatchShape? fixedShape = null) =>
        new(new Normalize(data.Mean.Select(v => (float)v).ToArray(), data.Std.Select(v => (float)v).ToArray()),
            new Pad(data.PadDivisor), device, fixedShape);

    /// <summary>The deterministic test-time transform (resize to data.img_scale, no flip).</summary>
    public static DetectionTransform EvalTransform(DataConfig data) => DetectionTransform.Eval(TestScale(data));

    /// <summary>data.img_scale as a resize scale: the test scale, and the training scale without multiscale.</summary>
    internal static ResizeScale TestScale(DataConfig data) => ToScale(data.ImgScale, "data.img_scale");

    private static MultiScale TrainScales(DataConfig data)
    {
        if (data.Multiscale is not { } ms) return new MultiScale([TestScale(data)]);
        var scales = ms.Scales.Select((s, i) => ToScale(s, $"data.multiscale.scales[{i}]")).ToList();
        return new MultiScale(scales, ms.Mode == MultiscaleMode.Range ? MultiScaleMode.Range : MultiScaleMode.Value);
    }

    private static ResizeScale ToScale(IReadOnlyList<int> wh, string key)
    {
        if (wh.Count != 2) throw new GflConfigException($"{key}: expected [long_edge, short_edge], got {wh.Count} values");
        return new ResizeScale(Math.Max(wh[0], wh[1]), Math.Min(wh[0], wh[1]));
    }
}
