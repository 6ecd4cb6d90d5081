using System.Globalization;

namespace GflTrainer.Coco;

/// <summary>Python's <c>'{:0.Nf}'.format(x)</c>, so the summary lines read exactly as pycocotools prints them.
/// Both Python and .NET round the exact binary value; they differ only on exact ties (0.0625, 0.5625, ...), where
/// Python rounds half to even and .NET away from zero.</summary>
internal static class PythonFixedPoint
{
    public static string Format(double value, int decimals)
    {
        if (double.IsNaN(value)) return "nan";
        if (double.IsInfinity(value)) return value > 0 ? "inf" : "-inf";
        string format = "F" + decimals.ToString(CultureInfo.InvariantCulture);
        double twiceScale = 2 * Math.Pow(10, decimals);
        double doubled = value * twiceScale;
        // A tie is a value whose scaled double is exactly an odd integer; FMA tells whether the product was exact.
        bool exact = Math.FusedMultiplyAdd(value, twiceScale, -doubled) == 0;
        if (exact && doubled == Math.Floor(doubled) && Math.Abs(doubled % 2) == 1)
        {
            double lower = Math.Floor(doubled / 2);
            double even = lower % 2 == 0 ? lower : lower + 1;
            return (even / (twiceScale / 2)).ToString(format, CultureInfo.InvariantCulture);
        }
        return value.ToString(format, CultureInfo.InvariantCulture);
    }
}
