using System.Globalization;
using GflTrainer.Coco;
using GflTrainer.Data;

namespace GflTrainer.Tests.Data;

/// <summary>Small VOC and YOLO folders written from a synthetic COCO set, so a conversion back to COCO can be
/// compared with the original: the inverse of each format's convention, written here independently of the
/// converters.</summary>
internal static class ConversionTestSets
{
    public static readonly string[] Splits = ["train", "val"];

    /// <summary>A synthetic shapes set (4 train, 2 val images of 96x96) in <c>DIR/coco</c>; the annotation files per split.</summary>
    public static Dictionary<string, CocoAnnotations> Coco(string dir)
    {
        var coco = Path.Combine(dir, "coco");
        SyntheticShapes.Write(coco, new SyntheticShapesOptions { TrainImages = 4, ValImages = 2, ImageSize = 96, MinSide = 8, MaxSide = 60, Seed = 3 });
        return Splits.ToDictionary(s => s, s => CocoAnnotations.Load(Path.Combine(coco, "annotations", $"instances_{s}.json")));
    }

    public static string CocoImage(string dir, CocoImage img) => Path.Combine(dir, "coco", "images", img.FileName);

    /// <summary>VOC in <c>DIR/voc</c>: mmdetection's pascal_voc.py reads x = xmin-1, w = xmax-xmin, so a COCO box
    /// [x, y, w, h] is written as xmin = x+1, xmax = x+w+1.</summary>
    public static string WriteVoc(string dir, Dictionary<string, CocoAnnotations> coco)
    {
        var voc = Path.Combine(dir, "voc");
        foreach (var sub in new[] { "Annotations", "JPEGImages", "ImageSets/Main" }) Directory.CreateDirectory(Path.Combine(voc, sub));
        foreach (var (split, ann) in coco)
        {
            var ids = new List<string>();
            var names = ann.Categories.ToDictionary(c => c.Id, c => c.Name);
            foreach (var img in ann.Images)
            {
                var stem = Path.GetFileNameWithoutExtension(img.FileName);
                ids.Add(stem);
                File.Copy(CocoImage(dir, img), Path.Combine(voc, "JPEGImages", stem + ".jpg"));
                var objects = ann.Annotations.Where(a => a.ImageId == img.Id).Select(a =>
                    VocObject(names[a.CategoryId], a.Bbox![0] + 1, a.Bbox[1] + 1, a.Bbox[0] + a.Bbox[2] + 1, a.Bbox[1] + a.Bbox[3] + 1));
                File.WriteAllText(Path.Combine(voc, "Annotations", stem + ".xml"), VocXml(stem + ".jpg", img.Width, img.Height, objects));
            }
            File.WriteAllLines(Path.Combine(voc, "ImageSets", "Main", split + ".txt"), ids);
        }
        return voc;
    }

    public static string VocObject(string name, double xmin, double ymin, double xmax, double ymax, int difficult = 0, int truncated = 0) =>
        $"""
          <object>
            <name>{name}</name>
            <truncated>{truncated}</truncated>
            <difficult>{difficult}</difficult>
            <bndbox>
              <xmin>{F(xmin)}</xmin>
              <ymin>{F(ymin)}</ymin>
              <xmax>{F(xmax)}</xmax>
              <ymax>{F(ymax)}</ymax>
            </bndbox>
          </object>

        """;

    public static string VocXml(string fileName, int width, int height, IEnumerable<string> objects) =>
        $"""
        <annotation>
          <folder>VOC2007</folder>
          <filename>{fileName}</filename>
          <size>
            <width>{width}</width>
            <height>{height}</height>
            <depth>3</depth>
          </size>
        {string.Concat(objects)}</annotation>

        """;

    /// <summary>YOLO in <c>DIR/yolo</c> (Ultralytics layout): class = category id - 1, centre and size normalised,
    /// 6 decimals as Ultralytics writes them; names in data.yaml as a list.</summary>
    public static string WriteYolo(string dir, Dictionary<string, CocoAnnotations> coco)
    {
        var yolo = Path.Combine(dir, "yolo");
        foreach (var (split, ann) in coco)
        {
            Directory.CreateDirectory(Path.Combine(yolo, "images", split));
            Directory.CreateDirectory(Path.Combine(yolo, "labels", split));
            foreach (var img in ann.Images)
            {
                var name = Path.GetFileName(img.FileName);
                File.Copy(CocoImage(dir, img), Path.Combine(yolo, "images", split, name));
                var lines = ann.Annotations.Where(a => a.ImageId == img.Id).Select(a =>
                {
                    var b = a.Bbox!;
                    return string.Join(' ', new[] { (b[0] + b[2] / 2) / img.Width, (b[1] + b[3] / 2) / img.Height, b[2] / img.Width, b[3] / img.Height }
                        .Select(v => v.ToString("F6", CultureInfo.InvariantCulture)).Prepend($"{a.CategoryId - 1}"));
                });
                File.WriteAllLines(Path.Combine(yolo, "labels", split, Path.ChangeExtension(name, ".txt")), lines);
            }
        }
        var categories = coco.Values.First().Categories;
        File.WriteAllText(Path.Combine(yolo, "data.yaml"), $"path: .\ntrain: images/train\nval: images/val\nnames: [{string.Join(", ", categories.Select(c => c.Name))}]\n");
        return yolo;
    }

    /// <summary>A plain JPEG of the given size (grey), for hand-made cases.</summary>
    public static void Jpeg(string path, int width, int height)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var bmp = new SkiaSharp.SKBitmap(new SkiaSharp.SKImageInfo(width, height, SkiaSharp.SKColorType.Rgba8888, SkiaSharp.SKAlphaType.Opaque));
        bmp.Erase(new SkiaSharp.SKColor(128, 128, 128));
        using var img = SkiaSharp.SKImage.FromBitmap(bmp);
        using var data = img.Encode(SkiaSharp.SKEncodedImageFormat.Jpeg, 90);
        File.WriteAllBytes(path, data.ToArray());
    }

    static string F(double v) => v.ToString(CultureInfo.InvariantCulture);
}
