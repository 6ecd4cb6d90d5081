using ScottPlot;

namespace GflTrainer.Reporting;

/// <summary>One named series of a line chart.</summary>
public sealed record ChartSeries(string Label, IReadOnlyList<double> Xs, IReadOnlyList<double> Ys);

/// <summary>Every plot <c>gfl</c> writes (training curves, PR curves, confusion matrix, AP bars, data histograms) is
/// made here, on ScottPlot, so they share one look: the embedded font (machines without fonts draw the same text),
/// one palette in category order, one size, and atomic writes. For a given input the PNG bytes are the same (no
/// timestamps; ScottPlot/Skia render deterministically), which lets runs be compared file by file.</summary>
public static class Charts
{
    public const int Width = 900;
    public const int Height = 540;

    /// <summary>Category colours (Tableau 10, then the rest of Kelly's list): category k always gets colour k in every
    /// plot of a run, so a class reads the same in the PR curves, the AP bars and the mosaic.</summary>
    public static IReadOnlyList<string> PaletteHex { get; } =
    [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
        "#f3c300", "#875692", "#f38400", "#a1caf1", "#be0032", "#c2b280", "#848482", "#008856", "#e68fac", "#0067a5",
    ];

    public static Color PaletteColor(int k) => Color.FromHex(PaletteHex[k % PaletteHex.Count]);

    /// <summary>A blank plot in the common style.</summary>
    public static Plot New(string title, string xLabel, string yLabel)
    {
        var plt = new Plot();
        plt.Font.Set(EmbeddedFont.RegisterWithScottPlot());
        plt.Title(title);
        plt.XLabel(xLabel);
        plt.YLabel(yLabel);
        return plt;
    }

    /// <summary>Lines without markers (dense series such as losses and PR curves), legend when more than one.</summary>
    public static Plot Lines(string title, string xLabel, string yLabel, IEnumerable<ChartSeries> series,
        Alignment legend = Alignment.UpperRight, bool markers = false)
    {
        var plt = New(title, xLabel, yLabel);
        // Series i keeps colour i even when an empty one is skipped (category k has one colour in every plot).
        var all = series.ToList();
        int drawn = all.Count(s => s.Xs.Count > 0);
        for (int i = 0; i < all.Count; i++)
        {
            if (all[i].Xs.Count == 0) continue;
            var line = plt.Add.ScatterLine(all[i].Xs.ToArray(), all[i].Ys.ToArray(), PaletteColor(i));
            // ScottPlot shows a legend as soon as one item has text: a single series is named by the title instead.
            if (drawn > 1) line.LegendText = all[i].Label;
            line.MarkerSize = markers ? 5 : 0;
            line.LineWidth = 2;
        }
        if (drawn > 1) plt.ShowLegend(legend);
        return plt;
    }

    /// <summary>Vertical bars with a category label under each and the value above it (per-class AP, counts).</summary>
    public static Plot Bars(string title, string yLabel, IReadOnlyList<string> labels, IReadOnlyList<double> values,
        string valueFormat = "0.000", bool colourByIndex = true)
    {
        var plt = New(title, "", yLabel);
        var bars = new List<Bar>();
        for (int i = 0; i < labels.Count; i++)
            bars.Add(new Bar
            {
                Position = i, Value = values[i], FillColor = colourByIndex ? PaletteColor(i) : PaletteColor(0),
                Label = double.IsFinite(values[i]) ? values[i].ToString(valueFormat, System.Globalization.CultureInfo.InvariantCulture) : "",
            });
        var plot = plt.Add.Bars(bars);
        plot.ValueLabelStyle.FontSize = labels.Count > 20 ? 9 : 12;
        CategoryTicks(plt.Axes.Bottom, labels);
        plt.Axes.Margins(bottom: 0, top: 0.15);
        return plt;
    }

    /// <summary>A histogram from bin edges (n+1) and counts (n); bars touch, as a histogram's should.</summary>
    public static Plot Histogram(string title, string xLabel, IReadOnlyList<double> edges, IReadOnlyList<double> counts, string yLabel = "count")
    {
        var plt = New(title, xLabel, yLabel);
        var bars = new List<Bar>();
        for (int i = 0; i < counts.Count; i++)
            bars.Add(new Bar
            {
                Position = (edges[i] + edges[i + 1]) / 2, Value = counts[i], Size = edges[i + 1] - edges[i],
                FillColor = PaletteColor(0), LineWidth = 0.5f, LineColor = Colors.White,
            });
        plt.Add.Bars(bars);
        plt.Axes.Margins(bottom: 0);
        return plt;
    }

    /// <summary>Dashed vertical lines at the given x values, named in a legend (thresholds on a histogram, such as
    /// COCO's 32 and 96 px size boundaries); returns <paramref name="plt"/>.</summary>
    public static Plot MarkX(Plot plt, IReadOnlyList<(double X, string Label)> marks)
    {
        var patterns = new[] { LinePattern.Dashed, LinePattern.Dotted, LinePattern.DenselyDashed };
        for (int i = 0; i < marks.Count; i++)
        {
            var line = plt.Add.VerticalLine(marks[i].X, 1.5f, Colors.Black, patterns[i % patterns.Length]);
            line.LegendText = marks[i].Label;
        }
        if (marks.Count > 0) plt.ShowLegend(Alignment.UpperRight);
        return plt;
    }

    /// <summary>The y axis from 0 to at least <paramref name="minTop"/>, so that all-zero bars (a good result, e.g. no
    /// gt without an anchor) stand on a readable axis instead of one centred on 0; returns <paramref name="plt"/>.</summary>
    public static Plot YFromZero(Plot plt, double minTop)
    {
        plt.Axes.AutoScale();
        var limits = plt.Axes.GetLimits();
        plt.Axes.SetLimitsY(0, Math.Max(limits.Top, minTop));
        return plt;
    }

    /// <summary>A matrix of cells with the value written in each (confusion matrix). Row 0 is drawn at the top, as a
    /// table is read; <paramref name="values"/> is [row, column].</summary>
    public static Plot Matrix(string title, string xLabel, string yLabel, IReadOnlyList<string> rowLabels,
        IReadOnlyList<string> columnLabels, double[,] values, Func<double, string> format)
    {
        int rows = values.GetLength(0), cols = values.GetLength(1);
        var plt = New(title, xLabel, yLabel);
        double max = 0;
        foreach (var v in values) if (double.IsFinite(v)) max = Math.Max(max, v);
        var low = Color.FromHex("#f7fbff");
        var high = Color.FromHex("#08306b");
        int cellsFont = Math.Max(7, Math.Min(14, 160 / Math.Max(rows, cols)));
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
            {
                double v = values[r, c];
                double t = max > 0 && double.IsFinite(v) ? v / max : 0;
                double y = rows - 1 - r;   // row 0 on top
                var rect = plt.Add.Rectangle(c - 0.5, c + 0.5, y - 0.5, y + 0.5);
                rect.FillColor = Mix(low, high, t);
                rect.LineWidth = 0.5f;
                rect.LineColor = Colors.White;
                if (v != 0 && double.IsFinite(v))
                {
                    var text = plt.Add.Text(format(v), c, y);
                    text.LabelFontSize = cellsFont;
                    text.LabelAlignment = Alignment.MiddleCenter;
                    text.LabelFontColor = t > 0.5 ? Colors.White : Colors.Black;
                }
            }
        CategoryTicks(plt.Axes.Bottom, columnLabels);
        CategoryTicks(plt.Axes.Left, rowLabels.Reverse().ToList());
        plt.Axes.SetLimits(-0.5, cols - 0.5, -0.5, rows - 0.5);
        plt.HideGrid();
        return plt;
    }

    /// <summary>Writes the plot as PNG atomically (a reader never sees half a file); returns the path.</summary>
    public static string Save(Plot plt, string dir, string name, int width = Width, int height = Height)
    {
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, name);
        var tmp = path + ".tmp.png";
        plt.SavePng(tmp, width, height);
        File.Move(tmp, path, overwrite: true);
        return path;
    }

    static void CategoryTicks(ScottPlot.IAxis axis, IReadOnlyList<string> labels)
    {
        var ticks = new ScottPlot.TickGenerators.NumericManual();
        for (int i = 0; i < labels.Count; i++) ticks.AddMajor(i, labels[i]);
        axis.TickGenerator = ticks;
        if (labels.Count > 6 && axis is ScottPlot.AxisPanels.BottomAxis)
        {
            axis.TickLabelStyle.Rotation = -45;
            axis.TickLabelStyle.Alignment = Alignment.MiddleRight;
        }
    }

    static Color Mix(Color a, Color b, double t) => new(
        (byte)Math.Round(a.R + (b.R - a.R) * t), (byte)Math.Round(a.G + (b.G - a.G) * t), (byte)Math.Round(a.B + (b.B - a.B) * t));
}
