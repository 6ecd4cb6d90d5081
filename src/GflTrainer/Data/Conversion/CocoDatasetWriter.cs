using System.Globalization;
using System.Text.Json;

namespace GflTrainer.Data.Conversion;

/// <summary>Writes one split of a <see cref="ConvertedDataset"/> as a COCO instances file: images (id, file_name,
/// width, height), annotations (id, image_id, category_id, bbox [x, y, w, h], area, iscrowd) and categories
/// (id, name). Ids are 1..N in output order and nothing depends on time or hashing order, so the same input gives
/// the same bytes. The file appears whole or not at all (temporary file in the same folder, then a rename): a
/// converter killed half-way must not leave a truncated file that a later training run reads.</summary>
public static class CocoDatasetWriter
{
    public static void Write(string file, ConvertedSplit split, IReadOnlyList<CategoryEntry> categories)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(file))!;
        Directory.CreateDirectory(dir);
        var temp = Path.Combine(dir, $".{Path.GetFileName(file)}.{Environment.ProcessId}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write))
            using (var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = false }))
                WriteJson(json, split, categories);
            File.Move(temp, file, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    static void WriteJson(Utf8JsonWriter json, ConvertedSplit split, IReadOnlyList<CategoryEntry> categories)
    {
        json.WriteStartObject();
        json.WriteStartObject("info");
        json.WriteString("description", $"converted by gfl data convert, split {split.Name}");
        json.WriteEndObject();

        json.WriteStartArray("images");
        for (int i = 0; i < split.Images.Count; i++)
        {
            var img = split.Images[i];
            json.WriteStartObject();
            json.WriteNumber("id", i + 1);
            json.WriteString("file_name", img.FileName);
            json.WriteNumber("width", img.Width);
            json.WriteNumber("height", img.Height);
            json.WriteEndObject();
        }
        json.WriteEndArray();

        json.WriteStartArray("annotations");
        long annId = 0;
        for (int i = 0; i < split.Images.Count; i++)
            foreach (var b in split.Images[i].Boxes)
            {
                json.WriteStartObject();
                json.WriteNumber("id", ++annId);
                json.WriteNumber("image_id", i + 1);
                json.WriteNumber("category_id", b.CategoryId);
                json.WriteStartArray("bbox");
                Number(json, b.X); Number(json, b.Y); Number(json, b.W); Number(json, b.H);
                json.WriteEndArray();
                json.WritePropertyName("area");
                Number(json, Round(b.W) * Round(b.H));   // of the written w and h, so a reader's w*h matches
                json.WriteNumber("iscrowd", b.IsCrowd ? 1 : 0);
                json.WriteEndObject();
            }
        json.WriteEndArray();

        json.WriteStartArray("categories");
        foreach (var c in categories)
        {
            json.WriteStartObject();
            json.WriteNumber("id", c.Id);
            json.WriteString("name", c.Name);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteEndObject();
    }

    /// <summary>Pixels rounded to 1/1000: below any effect on training, and it turns the float noise of
    /// normalised-to-pixel arithmetic (29.999999999999996) into the number a reader expects. Integers stay integers.</summary>
    static double Round(double v) => Math.Round(v, 3, MidpointRounding.AwayFromZero);

    static void Number(Utf8JsonWriter json, double v)
    {
        double r = Round(v);
        if (r == Math.Floor(r) && Math.Abs(r) < 1e15) json.WriteNumberValue((long)r);
        else json.WriteRawValue(r.ToString("0.###", CultureInfo.InvariantCulture));
    }
}
