namespace GflTrainer.Data.Statistics;

/// <summary>COCO's object size ranges (small below 32², medium below 96², large above, in box area), applied to the
/// boxes as the network sees them (after the resize), which is what the anchors are laid out for.</summary>
public enum BoxSize
{
    Small,
    Medium,
    Large,
}

public static class BoxSizes
{
    /// <summary>sqrt(area) below which a box is small; COCO's 32.</summary>
    public const double SmallBelow = 32;

    /// <summary>sqrt(area) below which a box is medium; COCO's 96.</summary>
    public const double MediumBelow = 96;

    public static IReadOnlyList<BoxSize> All { get; } = [BoxSize.Small, BoxSize.Medium, BoxSize.Large];

    public static BoxSize Of(double width, double height)
    {
        double area = width * height;
        return area < SmallBelow * SmallBelow ? BoxSize.Small : area < MediumBelow * MediumBelow ? BoxSize.Medium : BoxSize.Large;
    }

    public static string Name(BoxSize s) => s switch
    {
        BoxSize.Small => "small",
        BoxSize.Medium => "medium",
        _ => "large",
    };
}
