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
        for (int i = 1; i < model.Head.Strides.Count; i++)
            if (model.Head.Strides[i] <= model.Head.Strides[i - 1])
            {
                Fail("model.head.strides", $"must increase level by level, got {ConfigSchema.FormatValue(model.Head.Strides)}");
                break;
            }
        if (model.Head.StackedConvs > 0 && model.Head.FeatChannels % model.Head.NormGroups != 0)
            Fail("model.head.norm_groups", $"{model.Head.NormGroups} does not divide model.head.feat_channels = {model.Head.FeatChannels} (GroupNorm)");

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

        if (!Regex.IsMatch(c.Runtime.Device, @"^(auto|cpu|cuda(:\d+)?)$"))
            Fail("runtime.device", $"'{c.Runtime.Device}' is not a device; allowed auto, cpu, cuda, cuda:N");
    }
}
