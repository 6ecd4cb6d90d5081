using GflTrainer.Checkpoints;
using GflTrainer.Config;
using GflTrainer.Data;
using GflTrainer.Model;
using TorchSharp;
using GflTrainer.Coco;

namespace GflTrainer.Inference;

/// <summary>A detector ready for inference: configuration, weights on the device, and the class map that turns
/// contiguous labels back into the dataset's category ids and names.</summary>
internal sealed class TrainedDetector : IDisposable
{
    public GflConfig Config { get; }
    public GflDetector Model { get; }
    public CategoryMap Categories { get; }
    public string Source { get; }

    private TrainedDetector(GflConfig config, GflDetector model, CategoryMap categories, string source)
    {
        Config = config; Model = model; Categories = categories; Source = source;
    }

    /// <summary>Loads a gfl checkpoint folder (or a file inside it), or a bare <c>.safetensors</c> of detector weights
    /// (e.g. a converted mmdetection checkpoint), which then needs <paramref name="configPath"/>; its classes come from
    /// the config's <paramref name="classesFrom"/> annotation file.</summary>
    /// <param name="configPath">overrides the configuration stored in the checkpoint when given.</param>
    public static TrainedDetector Load(string checkpointPath, string? configPath, IReadOnlyList<string> overrides,
        torch.Device device, Func<GflConfig, string>? classesFrom = null)
    {
        var dir = File.Exists(checkpointPath) ? Path.GetDirectoryName(Path.GetFullPath(checkpointPath))! : checkpointPath;
        bool ours = File.Exists(Path.Combine(dir, CheckpointStore.MetaFile));
        if (!ours && !File.Exists(checkpointPath))
            throw new GflConfigException($"--checkpoint: {checkpointPath} is neither a gfl checkpoint folder nor a weights file") { Key = "--checkpoint" };
        GflConfig cfg;
        CategoryMap categories;
        SafetensorsContent weights;
        LoadedCheckpoint? ck = null;
        if (ours)
        {
            ck = CheckpointStore.Load(dir, loadOptimizer: false);
            cfg = configPath is not null ? ConfigLoader.Load(configPath, overrides)
                : ConfigLoader.LoadYaml(ck.Meta.ConfigYaml, Path.Combine(dir, CheckpointStore.MetaFile), overrides);
            categories = new CategoryMap(ck.Meta.Classes.Select(c => new CategoryEntry(c.CategoryId, c.Name)).ToList());
            weights = ck.Model;
        }
        else
        {
            if (configPath is null)
                throw new GflConfigException($"--checkpoint {checkpointPath} is a bare weights file: --config is needed to build the model") { Key = "--checkpoint" };
            cfg = ConfigLoader.Load(configPath, overrides);
            var ann = (classesFrom ?? (c => c.Data.Val.AnnFile))(cfg);
            if (!File.Exists(ann))
                throw new GflConfigException($"class names for a bare weights file come from the annotation file, but {ann} was not found");
            var coco = CocoAnnotations.Load(ann);
            categories = CocoDataset.ForEvaluation(coco, Path.GetDirectoryName(ann) ?? ".").Categories;
            weights = Safetensors.Read(checkpointPath);
        }
        try
        {
            if (categories.Categories.Count != cfg.Model.Head.NumClasses)
                throw new GflConfigException($"model.head.num_classes is {cfg.Model.Head.NumClasses} but the checkpoint's class map has {categories.Categories.Count} classes") { Key = "model.head.num_classes" };
            var model = DetectorFactory.CreateDetector(cfg.Model);
            WeightLoader.Load(model, weights.Tensors, WeightNameMapping.Identity, strict: true, sourceName: checkpointPath);
            model.to(device);
            Runtime.CuDnnBenchmark.Enabled = cfg.Runtime.CudnnBenchmark;   // eval, predict, export: no deterministic mode here
            if (cfg.Runtime.ChannelsLast) Runtime.ChannelsLast.Apply(model);   // convolutions pick NHWC from the weights
            model.eval();
            return new TrainedDetector(cfg, model, categories, checkpointPath);
        }
        finally
        {
            if (ck is not null) ck.Dispose(); else weights.Dispose();
        }
    }

    public void Dispose() => Model.Dispose();
}
