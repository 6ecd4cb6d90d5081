using SkiaSharp;

namespace GflTrainer.Reporting;

/// <summary>The embedded DejaVu Sans: SkiaSharp's NoDependencies native assets do not use fontconfig, so a fresh
/// machine has no font to draw text with. Extracted once per process to a temp file for ScottPlot, which loads
/// fonts by path.</summary>
internal static class EmbeddedFont
{
    public const string Family = "GflSans";
    private const string Resource = "GflTrainer.Fonts.DejaVuSans.ttf";
    private static readonly Lazy<string> ExtractedPath = new(Extract);
    private static readonly Lazy<SKTypeface> Face = new(() => SKTypeface.FromFile(ExtractedPath.Value)
        ?? throw new GflRuntimeException("embedded font could not be loaded"));
    private static int _scottPlotRegistered;

    public static SKTypeface Typeface => Face.Value;

    /// <summary>Registers the font with ScottPlot once; returns the family name to use.</summary>
    public static string RegisterWithScottPlot()
    {
        if (Interlocked.Exchange(ref _scottPlotRegistered, 1) == 0)
            ScottPlot.Fonts.AddFontFile(Family, ExtractedPath.Value);
        return Family;
    }

    private static string Extract()
    {
        using var s = typeof(EmbeddedFont).Assembly.GetManifestResourceStream(Resource)
            ?? throw new GflRuntimeException($"embedded resource {Resource} missing from the build");
        var dir = Path.Combine(Path.GetTempPath(), "gfl-fonts");
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, $"DejaVuSans-{s.Length}.ttf");
        if (!File.Exists(path) || new FileInfo(path).Length != s.Length)
        {
            var tmp = path + "." + Environment.ProcessId + ".tmp";
            using (var f = File.Create(tmp)) s.CopyTo(f);
            File.Move(tmp, path, overwrite: true);
        }
        return path;
    }
}
