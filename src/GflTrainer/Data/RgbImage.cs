namespace GflTrainer.Data;

/// <summary>A decoded image: RGB uint8, HWC, row-major (<c>Pixels[(y * Width + x) * 3 + c]</c>).</summary>
internal sealed record RgbImage(byte[] Pixels, int Height, int Width);
