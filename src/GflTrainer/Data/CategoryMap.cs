using System.Text.Json;
using System.Text.Json.Serialization;

namespace GflTrainer.Data;

/// <summary>A COCO category: its id in the annotation file and its name.</summary>
public sealed record CategoryEntry(long Id, string Name);

/// <summary>COCO category ids -> contiguous labels 0..C-1 in ascending category-id order (mmdetection's
/// <c>cat2label</c>: COCO's 80 ids 1..90 with gaps become 0..79). Saved in checkpoints so predictions map back
/// to the ids of the annotation file they were trained on.</summary>
public sealed class CategoryMap
{
    readonly Dictionary<long, int> _labelOfId;

    [JsonConstructor]
    public CategoryMap(IReadOnlyList<CategoryEntry> categories)
    {
        Categories = categories.OrderBy(c => c.Id).ToList();
        _labelOfId = new Dictionary<long, int>(Categories.Count);
        for (int i = 0; i < Categories.Count; i++)
            if (!_labelOfId.TryAdd(Categories[i].Id, i))
                throw new GflRuntimeException($"duplicate category id {Categories[i].Id}");
    }

    /// <summary>Entries in label order: <c>Categories[label]</c>.</summary>
    public IReadOnlyList<CategoryEntry> Categories { get; }

    [JsonIgnore] public int Count => Categories.Count;

    public bool TryGetLabel(long categoryId, out int label) => _labelOfId.TryGetValue(categoryId, out label);

    public int ToLabel(long categoryId) => _labelOfId.TryGetValue(categoryId, out int l) ? l
        : throw new GflRuntimeException($"category id {categoryId} is not in the category map");

    public long ToCategoryId(int label) => Categories[label].Id;

    public string ToJson() => JsonSerializer.Serialize(this);

    public static CategoryMap FromJson(string json) =>
        JsonSerializer.Deserialize<CategoryMap>(json) ?? throw new GflRuntimeException("category map JSON is empty");
}
