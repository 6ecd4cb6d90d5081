using GflTrainer.Checkpoints;
using GflTrainer.Config;
using GflTrainer.Data;

namespace GflTrainer.Training;

/// <summary>What differs between the run a checkpoint recorded and the run being started from it. A resume is meant
/// to continue the same run; a different learning rate, dataset or library version makes it another run that only
/// looks resumed, so <c>gfl train</c> lists the differences and stops unless <c>--resume-changed</c> accepts them.</summary>
internal static class RunChanges
{
    /// <summary>Keys that do not change the training trajectory: where and how verbosely it runs, when it evaluates
    /// and checkpoints, evaluation-only settings, loader parallelism (the order is fixed by the seed), and paths
    /// whose contents are compared by digest instead or which only matter at the first start.</summary>
    static readonly string[] Harmless =
    [
        "runtime.", "train.log_interval", "train.eval_interval", "train.checkpoint.", "evaluation.", "model.test.",
        "data.val.", "data.test.", "data.val_batch_size", "data.workers", "data.prefetch", "data.max_bad_images",
        "data.synthesize", "data.train.ann_file", "data.train.img_prefix", "model.backbone.pretrained",
    ];

    public static bool IsHarmless(string key) =>
        Harmless.Any(h => h.EndsWith('.') ? key.StartsWith(h, StringComparison.Ordinal) : key == h);

    /// <summary>The fingerprint of the run about to start.</summary>
    public static RunFingerprint Fingerprint(CocoDataset train, int worldSize)
    {
        var version = typeof(RunChanges).Assembly.GetName().Version?.ToString(3) ?? "unknown";
        return new RunFingerprint(train.SourceSha256, train.Count, worldSize, version, TorchSharp.torch.__version__);
    }

    /// <summary>Differences, one line each ("key: old -> new"); empty when the run is the same.</summary>
    public static IReadOnlyList<string> Between(TrainingCheckpoint saved, string savedFrom, GflConfig config, RunFingerprint now,
        CategoryMap categories)
    {
        var changes = new List<string>();
        try
        {
            var before = ConfigValues.Flatten(ConfigLoader.LoadYaml(saved.ConfigYaml, Path.Combine(savedFrom, CheckpointStore.MetaFile)));
            var after = ConfigValues.Flatten(config);
            foreach (var key in before.Keys.Union(after.Keys).Order(StringComparer.Ordinal))
            {
                if (IsHarmless(key)) continue;
                var a = before.GetValueOrDefault(key, "(absent)");
                var b = after.GetValueOrDefault(key, "(absent)");
                if (a != b) changes.Add($"{key}: {a} -> {b}");
            }
        }
        catch (ConfigValidationException e)
        {
            changes.Add($"config: the checkpoint's configuration no longer loads ({e.Problems.Count} problem(s), first: {e.Problems[0]})");
        }

        var savedClasses = string.Join(", ", saved.Classes.Select(c => $"{c.CategoryId}:{c.Name}"));
        var nowClasses = string.Join(", ", categories.Categories.Select(c => $"{c.Id}:{c.Name}"));
        if (savedClasses != nowClasses) changes.Add($"classes: [{savedClasses}] -> [{nowClasses}]");

        if (saved.Fingerprint is { } was)
        {
            if (was.TrainAnnSha256 != now.TrainAnnSha256 || was.TrainImages != now.TrainImages)
                changes.Add($"training annotations: sha256 {was.TrainAnnSha256[..12]}.. ({was.TrainImages} images) -> " +
                            $"sha256 {now.TrainAnnSha256[..12]}.. ({now.TrainImages} images)");
            if (was.WorldSize != now.WorldSize) changes.Add($"world size: {was.WorldSize} -> {now.WorldSize}");
            if (was.GflVersion != now.GflVersion) changes.Add($"gfl version: {was.GflVersion} -> {now.GflVersion}");
            if (was.LibtorchVersion != now.LibtorchVersion) changes.Add($"libtorch version: {was.LibtorchVersion} -> {now.LibtorchVersion}");
        }
        return changes;
    }
}
