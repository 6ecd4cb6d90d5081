namespace GflTrainer.Data;

/// <summary>A sample after resize and flip, still uint8 (normalisation and padding happen at collation, on the
/// training device). Plain arrays, so worker threads hand it over without tensor ownership crossing threads.</summary>
/// <param name="Pixels">RGB uint8 HWC of the resized image.</param>
/// <param name="Boxes">G*4 xyxy in resized-image pixels.</param>
/// <param name="IgnoredBoxes">K*4 xyxy crowd regions in resized-image pixels.</param>
internal sealed record TransformedSample(byte[] Pixels, int Height, int Width, float[] Boxes, long[] Labels,
    float[] IgnoredBoxes, ImageMeta Meta);
