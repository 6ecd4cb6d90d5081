using GflTrainer.Coco;
using GflTrainer.Config;

namespace GflTrainer.Data;

/// <summary>The rules between a configuration and the data it names, in one place: <c>gfl train</c> applies them
/// once the training set is loaded, and <c>gfl config check</c> applies them when the files exist, so a config that
/// passes the check does not fail at the start of training for the same reason.</summary>
public static class DataRules
{
    /// <summary><c>model.head.num_classes</c> is the number of categories in the training annotation file (one sigmoid
    /// per category, labels assigned in id order).</summary>
    public static void CheckClasses(ModelConfig model, CategoryMap categories, string annFile)
    {
        if (categories.Categories.Count != model.Head.NumClasses)
            throw new GflConfigException($"model.head.num_classes is {model.Head.NumClasses} but {annFile} has " +
                $"{categories.Categories.Count} categories ({string.Join(", ", categories.Categories.Select(c => c.Name))})")
            { Key = "model.head.num_classes" };
    }

    /// <summary>Applies the rules that need the data to the files the config names. Returns what was checked, or
    /// null when <c>data.train.ann_file</c> does not exist (yet: <c>data.synthesize</c> may write it).</summary>
    public static string? CheckFiles(GflConfig config)
    {
        var annFile = config.Data.Train.AnnFile;
        if (!File.Exists(annFile)) return null;
        var coco = CocoAnnotations.Load(annFile);
        var categories = new CategoryMap(coco.Categories.Select(c => new CategoryEntry(c.Id, c.Name)).ToList());
        CheckClasses(config.Model, categories, annFile);
        return $"{annFile}: {categories.Categories.Count} categories = model.head.num_classes";
    }
}
