namespace GflTrainer.Coco;

/// <summary>The per image, category and area-range matching results of <see cref="CocoEvaluator.EvaluateImages"/>,
/// input to <see cref="CocoEvaluator.Accumulate"/>.</summary>
public sealed class CocoImageEvaluations
{
    internal CocoImageEvaluations(int categoryCount, int areaCount, int imageCount)
    {
        Results = new CocoImageEvaluation?[categoryCount * areaCount * imageCount];
        CategoryCount = categoryCount;
        AreaCount = areaCount;
        ImageCount = imageCount;
    }

    /// <summary>Indexed [(k * A + a) * I + i] like pycocotools' <c>evalImgs</c>; null where the image has neither
    /// annotations nor detections of the category.</summary>
    internal CocoImageEvaluation?[] Results { get; }
    internal int CategoryCount { get; }
    internal int AreaCount { get; }
    internal int ImageCount { get; }
}
