using System.Text.RegularExpressions;

namespace GflTrainer.Config;

/// <summary>Checks that involve more than one key or a set of allowed values; single-key types and ranges
/// are checked by <see cref="ConfigBinder"/> from the records' attributes.</summary>
internal static class ConfigValidator
{
    public static void Check(GflConfig c, ConfigBinder binder)
    {
        void Fail(string path, string message) =>
            binder.Report(binder.Marks.GetValueOrDefault(path, SourceMark.Default), path, message);

        var model = c.Model;
        if (model.Head.Strides.Count != model.Neck.NumOuts)
            Fail("model.head.strides", $"has {model.Head.Strides.Count} strides but model.neck.num_outs is {model.Neck.NumOuts}; " +
                 "one stride per pyramid level");
        // The priors sit on the FPN's levels: C3..C5 (strides 8, 16, 32) and stride-2 extra levels after them, so the
        // strides follow from the backbone and neck; the key exists to state them as mmdetection's config does.
        if (model.Head.Strides.Where((s, i) => s != 8 << i).Any())
            Fail("model.head.strides", $"the FPN levels P3, P4, ... have strides 8, 16, 32, 64, 128, ...; got {ConfigSchema.FormatValue(model.Head.Strides)}");
        // Only the GFL reference FPN is built (Model/Fpn.cs); other mmdetection FPN variants are rejected here so that
        // `gfl config check` catches them, not the start of training.
        if (model.Neck.StartLevel != 1)
            Fail("model.neck.start_level", $"only 1 (the FPN starts at C3, the GFL reference) is implemented, got {model.Neck.StartLevel}");
        if (model.Neck.AddExtraConvs is not (ExtraConvsSource.OnOutput or ExtraConvsSource.OnInput))
            Fail("model.neck.add_extra_convs", $"on_output (GFL, ATSS) and on_input (RetinaNet) are implemented, got {ConfigSchema.FormatValue(model.Neck.AddExtraConvs)}");
        // The ATSS assigner of the gfl and atss heads picks candidates per location: one anchor each.
        if (model.Head.Type != HeadType.Retinanet && (model.Head.ScalesPerOctave != 1 || model.Head.Ratios.Count != 1 || model.Head.Ratios[0] != 1.0))
            Fail(model.Head.ScalesPerOctave != 1 ? "model.head.scales_per_octave" : "model.head.ratios",
                $"the {ConfigSchema.FormatValue(model.Head.Type)} head has one square anchor per location (scales_per_octave 1, ratios [1.0]); several are for retinanet");
        if (model.Assigner.NegIouThr > model.Assigner.PosIouThr)
            Fail("model.assigner.neg_iou_thr", $"{model.Assigner.NegIouThr} is above model.assigner.pos_iou_thr = {model.Assigner.PosIouThr}");
        if (model.Neck.ReluBeforeExtraConvs)
            Fail("model.neck.relu_before_extra_convs", "only false (the GFL reference) is implemented");
        if (model.Head.Type != HeadType.Retinanet && model.Head.StackedConvs > 0 && model.Head.FeatChannels % model.Head.NormGroups != 0)
            Fail("model.head.norm_groups", $"{model.Head.NormGroups} does not divide model.head.feat_channels = {model.Head.FeatChannels} (GroupNorm)");

        if (!c.Data.KeepRatio)
            Fail("data.keep_ratio", "only true (mmdetection's default: scale = min(long/long_side, short/short_side)) is implemented");
        if (!c.Data.ToRgb)
            Fail("data.to_rgb", "images are decoded as RGB; false (BGR mean/std, e.g. caffe-style weights) is not implemented");

        if (c.Data.Multiscale is { } ms)
        {
            for (int i = 0; i < ms.Scales.Count; i++)
                if (ms.Scales[i].Count != 2 || ms.Scales[i].Any(v => v < 1))
                    Fail($"data.multiscale.scales", $"entry {i} is {ConfigSchema.FormatValue(ms.Scales[i])}; expected [long, short] with both >= 1");
            if (ms.Mode == MultiscaleMode.Range && ms.Scales.Count != 2)
                Fail("data.multiscale.scales", $"mode range needs exactly 2 scales (the two ends), got {ms.Scales.Count}");
        }

        var steps = c.Train.Schedule.Steps;
        for (int i = 1; i < steps.Count; i++)
            if (steps[i] <= steps[i - 1])
            {
                Fail("train.schedule.steps", $"must be strictly increasing, got {ConfigSchema.FormatValue(steps)}");
                break;
            }

        if (c.Train.Optimizer.Nesterov && c.Train.Optimizer.Momentum == 0)
            Fail("train.optimizer.nesterov", "Nesterov momentum needs train.optimizer.momentum > 0 (as torch.optim.SGD)");

        if (!Regex.IsMatch(c.Runtime.Device, @"^(auto|cpu|cuda(:\d+)?)$"))
            Fail("runtime.device", $"'{c.Runtime.Device}' is not a device; allowed auto, cpu, cuda, cuda:N");

        if (c.Runtime.CudnnBenchmark && c.Train.Deterministic)
            Fail("runtime.cudnn_benchmark", "cannot be combined with train.deterministic (cuDNN autotuning picks kernels by timing)");
    }
}
