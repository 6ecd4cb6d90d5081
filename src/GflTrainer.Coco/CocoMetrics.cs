using System.Text;
using System.Text.Json;

namespace GflTrainer.Coco;

/// <summary>AP@[.5:.95] of one category (all areas, maxDets 100); -1 when the category has no non-crowd
/// ground truth (mmdetection prints nan there).</summary>
public sealed record CocoCategoryAp(long CategoryId, string Name, double AP);

/// <summary>The result of a COCO bbox evaluation: pycocotools' 12 summary numbers (-1 where there is nothing to
/// average), the per-category AP, the summary text exactly as pycocotools prints it, and warnings.</summary>
public sealed record CocoMetrics
{
    /// <summary>Names of <see cref="Stats"/> in pycocotools' order, also the keys of metrics.json's "bbox".</summary>
    public static IReadOnlyList<string> StatNames { get; } =
        ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"];

    /// <summary>AP @[IoU=0.50:0.95, area all, maxDets 100].</summary>
    public required double AP { get; init; }
    /// <summary>AP @[IoU=0.50].</summary>
    public required double AP50 { get; init; }
    /// <summary>AP @[IoU=0.75].</summary>
    public required double AP75 { get; init; }
    /// <summary>AP for small objects (area &lt;= 32²).</summary>
    public required double APs { get; init; }
    /// <summary>AP for medium objects (32² &lt;= area &lt;= 96²).</summary>
    public required double APm { get; init; }
    /// <summary>AP for large objects (area &gt;= 96²).</summary>
    public required double APl { get; init; }
    /// <summary>AR with 1 detection per image and category.</summary>
    public required double AR1 { get; init; }
    /// <summary>AR with 10 detections per image and category.</summary>
    public required double AR10 { get; init; }
    /// <summary>AR with 100 detections per image and category.</summary>
    public required double AR100 { get; init; }
    /// <summary>AR (maxDets 100) for small objects.</summary>
    public required double ARs { get; init; }
    /// <summary>AR (maxDets 100) for medium objects.</summary>
    public required double ARm { get; init; }
    /// <summary>AR (maxDets 100) for large objects.</summary>
    public required double ARl { get; init; }

    /// <summary>Per category, ascending category id.</summary>
    public required IReadOnlyList<CocoCategoryAp> PerCategory { get; init; }

    /// <summary>The 12 lines <c>COCOeval.summarize()</c> prints.</summary>
    public required IReadOnlyList<string> SummaryLines { get; init; }

    /// <summary>Input problems that did not stop the evaluation (annotation id 0, unknown categories, no detections).</summary>
    public required IReadOnlyList<string> Warnings { get; init; }

    /// <summary>The 12 numbers in pycocotools' <c>stats</c> order (<see cref="StatNames"/>).</summary>
    public IReadOnlyList<double> Stats => [AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl];

    /// <summary>metrics.json: <c>{"bbox": {"AP": ..., ...}, "stats": [12 numbers], "per_category": {"name": AP}}</c>.
    /// Numbers are written round-trip exact; -1 keeps pycocotools' meaning (JSON has no NaN). A name shared by
    /// several categories gets its id appended so no entry is lost.</summary>
    public string ToJson()
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteStartObject("bbox");
            var stats = Stats;
            for (int i = 0; i < stats.Count; i++) w.WriteNumber(StatNames[i], stats[i]);
            w.WriteEndObject();
            w.WriteStartArray("stats");
            foreach (double s in stats) w.WriteNumberValue(s);
            w.WriteEndArray();
            w.WriteStartObject("per_category");
            var repeated = PerCategory.GroupBy(c => c.Name).Where(g => g.Count() > 1).Select(g => g.Key).ToHashSet();
            foreach (var c in PerCategory)
                w.WriteNumber(repeated.Contains(c.Name) ? $"{c.Name} (id {c.CategoryId})" : c.Name, c.AP);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray()) + "\n";
    }

    /// <summary>mmdetection's classwise table (three category/AP pairs per row, AP to 3 decimals, nan where a
    /// category has no ground truth), drawn like terminaltables' AsciiTable.</summary>
    public IReadOnlyList<string> PerCategoryTable()
    {
        const int pairsPerRow = 3;
        int columns = Math.Min(pairsPerRow, Math.Max(1, PerCategory.Count)) * 2;
        var cells = new List<string[]> { Enumerable.Range(0, columns).Select(c => c % 2 == 0 ? "category" : "AP").ToArray() };
        for (int start = 0; start < PerCategory.Count; start += columns / 2)
        {
            var row = new string[columns];
            for (int c = 0; c < columns / 2; c++)
            {
                int k = start + c;
                row[2 * c] = k < PerCategory.Count ? PerCategory[k].Name : "";
                row[2 * c + 1] = k < PerCategory.Count
                    ? (PerCategory[k].AP > -1 ? PythonFixedPoint.Format(PerCategory[k].AP, 3) : "nan") : "";
            }
            cells.Add(row);
        }
        var widths = Enumerable.Range(0, columns).Select(c => cells.Max(r => r[c].Length)).ToArray();
        string border = "+" + string.Join("+", widths.Select(w => new string('-', w + 2))) + "+";
        string Row(string[] r) => "| " + string.Join(" | ", r.Select((s, c) => s.PadRight(widths[c]))) + " |";
        var lines = new List<string> { border, Row(cells[0]), border };
        lines.AddRange(cells.Skip(1).Select(Row));
        lines.Add(border);
        return lines;
    }
}
