namespace GflTrainer.Data.Conversion;

/// <summary>One box in COCO pixels [x, y, w, h] (x, y the top-left corner, 0-based), already clipped to its image.
/// <see cref="IsCrowd"/> marks boxes that training and evaluation ignore (VOC's <c>difficult</c>).</summary>
public sealed record ConvertedBox(long CategoryId, double X, double Y, double W, double H, bool IsCrowd);

/// <summary>One image: <see cref="FileName"/> relative to <see cref="ConvertedDataset.ImageRoot"/> with '/'
/// separators, and its size as training decodes it (EXIF orientation applied).</summary>
public sealed record ConvertedImage(string FileName, int Width, int Height, IReadOnlyList<ConvertedBox> Boxes);

/// <summary>The images of one split (<c>train</c>, <c>val</c>, ... or <c>all</c>), in output order.</summary>
public sealed record ConvertedSplit(string Name, IReadOnlyList<ConvertedImage> Images);

/// <summary>What a source format converts to before it is written: format-neutral, so one writer serves every
/// reader. <see cref="Categories"/> are in id order, ids 1..N.</summary>
public sealed record ConvertedDataset(string ImageRoot, IReadOnlyList<CategoryEntry> Categories,
    IReadOnlyList<ConvertedSplit> Splits, ConversionReport Report);
