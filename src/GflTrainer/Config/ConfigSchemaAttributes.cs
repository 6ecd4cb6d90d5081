namespace GflTrainer.Config;

/// <summary>Inclusive (unless marked exclusive) numeric bounds of a config value; on a list it bounds every
/// element. <see cref="ConfigLoader"/> reports a violation with file, line and the allowed range.</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class ConfigRangeAttribute(double min, double max) : Attribute
{
    /// <summary>Lower bound.</summary>
    public double Min { get; } = min;

    /// <summary>Upper bound.</summary>
    public double Max { get; } = max;

    /// <summary>When true the value must be strictly greater than <see cref="Min"/>.</summary>
    public bool MinExclusive { get; set; }

    /// <summary>When true the value must be strictly less than <see cref="Max"/>.</summary>
    public bool MaxExclusive { get; set; }

    internal bool Contains(double v) =>
        (MinExclusive ? v > Min : v >= Min) && (MaxExclusive ? v < Max : v <= Max);

    /// <summary>Interval notation, e.g. <c>(0, 1]</c>; unbounded sides print as <c>inf</c>.</summary>
    public override string ToString() =>
        $"{(MinExclusive ? "(" : "[")}{Bound(Min)}, {Bound(Max)}{(MaxExclusive ? ")" : "]")}";

    static string Bound(double b) => double.IsNegativeInfinity(b) ? "-inf"
        : double.IsPositiveInfinity(b) ? "inf"
        : b.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary>Allowed number of elements of a list-valued config key.</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class ConfigLengthAttribute(int min, int max) : Attribute
{
    /// <summary>Fewest elements.</summary>
    public int Min { get; } = min;

    /// <summary>Most elements.</summary>
    public int Max { get; } = max;

    /// <summary>"exactly 3" or "1 to 5".</summary>
    public override string ToString() => Min == Max ? $"exactly {Min}" : Max == int.MaxValue ? $"at least {Min}" : $"{Min} to {Max}";
}

/// <summary>Overrides the YAML key when the reference name is not the snake_case of the property
/// (mmdetection writes <c>topk</c>, not <c>top_k</c>).</summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
public sealed class ConfigKeyAttribute(string name) : Attribute
{
    /// <summary>The YAML key.</summary>
    public string Name { get; } = name;
}

/// <summary>The only integer values a config key accepts (e.g. ResNet depths).</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class ConfigAllowedAttribute(params int[] values) : Attribute
{
    /// <summary>Allowed values.</summary>
    public IReadOnlyList<int> Values { get; } = values;

    /// <summary>"one of 18, 34, 50".</summary>
    public override string ToString() => "one of " + string.Join(", ", Values);
}
