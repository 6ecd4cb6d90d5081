using GflTrainer.Reporting;
using SkiaSharp;
using Xunit;

namespace GflTrainer.Tests.Reporting;

public sealed class ChartsTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("gfl-charts").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    string[] RenderAll(string sub)
    {
        var dir = Path.Combine(_dir, sub);
        return
        [
            Charts.Save(Charts.Lines("PR", "recall", "precision", [new ChartSeries("a", [0, 0.5, 1], [1, 0.8, 0.2]), new ChartSeries("b", [0, 1], [1, 0.5])]), dir, "lines.png"),
            Charts.Save(Charts.Bars("AP per class", "AP", ["RBC", "WBC", "Platelets"], [0.5, 0.9, double.NaN]), dir, "bars.png"),
            Charts.Save(Charts.Histogram("box width", "px", [0, 10, 20, 40], [3, 7, 1]), dir, "hist.png"),
            Charts.Save(Charts.Matrix("confusion", "true", "predicted", ["a", "b", "background"], ["a", "b", "background"],
                new double[,] { { 9, 1, 2 }, { 0, 5, 0 }, { 1, 0, 0 } }, v => v.ToString("0")), dir, "matrix.png", 600, 600),
        ];
    }

    [Fact]
    public void EveryChartKind_RendersAPng_AndTheSameInputGivesTheSameBytes()
    {
        var first = RenderAll("one");
        var second = RenderAll("two");
        for (int i = 0; i < first.Length; i++)
        {
            var bytes = File.ReadAllBytes(first[i]);
            Assert.True(bytes.Length > 2000, first[i]);
            Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, bytes[..4]);
            Assert.Equal(bytes, File.ReadAllBytes(second[i]));
            Assert.False(File.Exists(first[i] + ".tmp.png"));
        }
    }

    [Fact]
    public void Matrix_DrawsRowZeroAtTheTop_DarkestWhereTheValueIsLargest()
    {
        // Value 9 at [0, 0] is the darkest cell: it must appear top-left, not bottom-left.
        var path = RenderAll("m")[3];
        using var bmp = SKBitmap.Decode(path);
        float Luma(int x, int y) { var c = bmp.GetPixel(x, y); return 0.3f * c.Red + 0.6f * c.Green + 0.1f * c.Blue; }
        // Darkest pixel over the picture: its quadrant tells where [0,0] went.
        (int X, int Y, float L) darkest = (0, 0, float.MaxValue);
        for (int y = 0; y < bmp.Height; y += 2)
            for (int x = 0; x < bmp.Width; x += 2)
            {
                var c = bmp.GetPixel(x, y);
                if (Math.Abs(c.Red - 8) + Math.Abs(c.Green - 48) + Math.Abs(c.Blue - 107) < 10) { darkest = (x, y, Luma(x, y)); goto found; }
            }
        found:
        Assert.True(darkest.L < float.MaxValue, "the darkest cell colour was not drawn");
        Assert.True(darkest.Y < bmp.Height / 2 && darkest.X < bmp.Width / 2, $"cell [0,0] drawn at ({darkest.X},{darkest.Y})");
    }
}
