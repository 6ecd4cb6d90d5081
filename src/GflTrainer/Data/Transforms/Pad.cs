namespace GflTrainer.Data.Transforms;

/// <summary>Bottom/right padding to a multiple of <see cref="SizeDivisor"/> (mmdetection <c>Pad(size_divisor=32)</c>);
/// the padded area is 0 after normalisation, as mmdetection pads the normalised image with 0. The batch is padded to
/// the largest padded shape in it (the collator writes each image into a zero batch tensor).</summary>
internal sealed record Pad(int SizeDivisor = 32)
{
    public int Padded(int size) => (size + SizeDivisor - 1) / SizeDivisor * SizeDivisor;
}
