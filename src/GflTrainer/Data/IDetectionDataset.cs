namespace GflTrainer.Data;

/// <summary>A split the loader can read, whatever its file format: images with their ground truth in original-image
/// pixels and contiguous labels over <see cref="Categories"/>. <see cref="CocoDataset"/> is the COCO one; another
/// format (VOC, YOLO txt) implements this and plugs into <see cref="DetectionLoader"/>, training and evaluation
/// unchanged.</summary>
internal interface IDetectionDataset
{
    /// <summary>Where the split came from (its annotation file), for messages.</summary>
    string Source { get; }

    /// <summary>The classes, in label order (label i is <c>Categories.Categories[i]</c>).</summary>
    CategoryMap Categories { get; }

    /// <summary>The images, in the split's order (evaluation keeps it; training shuffles by index).</summary>
    IReadOnlyList<DatasetEntry> Entries { get; }

    int Count => Entries.Count;

    /// <summary>Full path of an entry's image file; throws a message naming the entry when it cannot be resolved.</summary>
    string PathOf(DatasetEntry entry);
}
