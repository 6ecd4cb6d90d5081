namespace GflTrainer.Coco;

/// <summary>A COCO annotation or results file that cannot be evaluated (malformed JSON, a missing field,
/// a detection on an image the annotations do not list). The message names the file and, where known, the
/// line and position or the offending record; the CLI prints it as one line and exits with code 1 (this project
/// has no dependency on the application's error types).</summary>
public sealed class CocoFormatException(string file, string message, Exception? inner = null)
    : Exception($"{file}: {message}", inner)
{
    /// <summary>The file that was being read.</summary>
    public string File { get; } = file;
}
