namespace GflTrainer.Data.Conversion;

/// <summary>An image's size as training sees it, or why it could not be read: converters keep going past a bad
/// image and report it instead of stopping at the first.</summary>
public readonly record struct ImageSizeResult(int Width, int Height, string? Error)
{
    public static ImageSizeResult Read(string file)
    {
        try
        {
            var (w, h) = ImageDecoder.ReadSize(file);
            return new ImageSizeResult(w, h, null);
        }
        catch (ImageDecodeException e) { return new ImageSizeResult(0, 0, e.Reason); }
        catch (IOException e) { return new ImageSizeResult(0, 0, e.Message); }
    }
}
