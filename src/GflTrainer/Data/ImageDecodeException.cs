namespace GflTrainer.Data;

/// <summary>An image file that is missing, truncated or not decodable. Names the file.</summary>
public sealed class ImageDecodeException(string file, string reason)
    : GflRuntimeException($"cannot decode image {file}: {reason}")
{
    public string File { get; } = file;
    public string Reason { get; } = reason;
}
