namespace GflTrainer.Coco;

/// <summary>An object-size bucket: an annotation (by its <c>area</c> field) or a detection (by w*h) is in it when
/// <c>Min &lt;= area &lt;= Max</c>; both ends are inclusive, so an area of exactly 1024 is small and medium.</summary>
public sealed record CocoAreaRange(string Label, double Min, double Max);

/// <summary>pycocotools' <c>Params(iouType='bbox')</c>. The defaults are the COCO protocol; the thresholds are the
/// exact doubles numpy's <c>linspace</c> produces, which matter where an IoU or a recall lands on a threshold.</summary>
public sealed record CocoEvalParameters
{
    /// <summary><c>np.linspace(.5, .95, 10)</c>: 0.5, 0.55, ..., 0.85, 0.8999999999999999, 0.95.</summary>
    public IReadOnlyList<double> IouThresholds { get; init; } = Linspace(0.5, 0.95, 10);

    /// <summary><c>np.linspace(0, 1, 101)</c> = i*0.01 (0.35000000000000003 and nine others are one ulp above i/100).</summary>
    public IReadOnlyList<double> RecallThresholds { get; init; } = Linspace(0.0, 1.0, 101);

    /// <summary>Detections kept per image and category (the last, largest value) and the AR@k cut-offs.
    /// The summary reads AR at [0], [1], [2] and AP at [2], as pycocotools does.</summary>
    public IReadOnlyList<int> MaxDetections { get; init; } = [1, 10, 100];

    /// <summary>all [0, 1e10], small [0, 32²], medium [32², 96²], large [96², 1e10].</summary>
    public IReadOnlyList<CocoAreaRange> AreaRanges { get; init; } =
    [
        new("all", 0, 1e10), new("small", 0, 32 * 32), new("medium", 32 * 32, 96 * 96), new("large", 96 * 96, 1e10),
    ];

    /// <summary>The COCO bbox protocol.</summary>
    public static CocoEvalParameters Bbox { get; } = new();

    /// <summary>numpy.linspace with endpoint: <c>start + i * ((stop - start) / (num - 1))</c>, the last value set to
    /// <paramref name="stop"/>; the same operations in the same order give the same doubles.</summary>
    internal static double[] Linspace(double start, double stop, int num)
    {
        double step = (stop - start) / (num - 1);
        var values = new double[num];
        for (int i = 0; i < num; i++) values[i] = i * step + start;
        values[num - 1] = stop;
        return values;
    }
}
