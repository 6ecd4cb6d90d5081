using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace GflTrainer.Coco;

// The COCO results file (a list of detections), read with System.Text.Json straight from a FileStream (the
// serializer streams the file through a small buffer; no DOM and no whole-file string). Instances files (ground
// truth) have their own streaming reader, CocoAnnotations, shared by training and evaluation.

/// <summary>One entry of a COCO results file (<c>[{image_id, category_id, bbox, score}]</c>).</summary>
internal sealed class CocoResultDto
{
    [JsonPropertyName("image_id"), JsonConverter(typeof(CocoIdConverter))] public long? ImageId { get; set; }
    [JsonPropertyName("category_id"), JsonConverter(typeof(CocoIdConverter))] public long? CategoryId { get; set; }
    [JsonPropertyName("bbox")] public double[]? Bbox { get; set; }
    [JsonPropertyName("score")] public double? Score { get; set; }
}

[JsonSerializable(typeof(List<CocoResultDto>))]
internal sealed partial class CocoJsonContext : JsonSerializerContext;

/// <summary>Ids are integers, but converters write them as <c>12.0</c> too; Python treats 12.0 and 12 as the
/// same dictionary key, so we accept any integral number.</summary>
internal sealed class CocoIdConverter : JsonConverter<long?>
{
    public override long? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType == JsonTokenType.Null) return null;
        if (reader.TokenType != JsonTokenType.Number)
            throw new JsonException($"an id must be an integer, found {reader.TokenType}");
        if (reader.TryGetInt64(out long id)) return id;
        double d = reader.GetDouble();
        if (d != Math.Floor(d) || Math.Abs(d) > 9.007199254740992e15)
            throw new JsonException($"an id must be an integer, found {d.ToString(System.Globalization.CultureInfo.InvariantCulture)}");
        return (long)d;
    }

    public override void Write(Utf8JsonWriter writer, long? value, JsonSerializerOptions options) =>
        throw new NotSupportedException("COCO files are only read");
}

/// <summary><c>iscrowd</c> is 0/1 in COCO files and true/false in some converters' output; pycocotools reads
/// it as a truth value, so any non-zero number is a crowd.</summary>
internal sealed class CocoFlagConverter : JsonConverter<bool?>
{
    public override bool? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        reader.TokenType switch
        {
            JsonTokenType.True => true,
            JsonTokenType.False => false,
            JsonTokenType.Null => null,
            JsonTokenType.Number => reader.GetDouble() != 0,
            _ => throw new JsonException($"iscrowd must be 0/1 or true/false, found {reader.TokenType}"),
        };

    public override void Write(Utf8JsonWriter writer, bool? value, JsonSerializerOptions options) =>
        throw new NotSupportedException("COCO files are only read");
}

/// <summary>Opens a COCO JSON file and turns every I/O or syntax failure into a <see cref="CocoFormatException"/>
/// naming the file and the line/position the reader stopped at.</summary>
internal static class CocoJsonFile
{
    public static T Read<T>(string path, JsonTypeInfo<T> typeInfo, string expectedRoot)
    {
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CocoFormatException(path, e is FileNotFoundException or DirectoryNotFoundException
                ? "file not found" : $"cannot open: {e.Message}", e);
        }
        using (stream)
        {
            try
            {
                return JsonSerializer.Deserialize(stream, typeInfo)
                    ?? throw new CocoFormatException(path, $"expected {expectedRoot}, found null");
            }
            catch (JsonException e)
            {
                // A root of the wrong type (an object where a list belongs) is reported at path "$" without an
                // inner reader error: valid JSON, wrong file. Say what was expected instead of the serializer's
                // type names.
                if (e.Path == "$" && e.InnerException is null)
                    throw new CocoFormatException(path, $"expected {expectedRoot}", e);
                string where = e.LineNumber is long line
                    ? $"line {line + 1}, position {(e.BytePositionInLine ?? 0) + 1}" : "unknown position";
                string at = e.Path is { Length: > 1 } p ? $" (at {p})" : "";
                throw new CocoFormatException(path, $"invalid JSON at {where}{at}: {FirstSentence(e.Message)}", e);
            }
        }
    }

    // System.Text.Json appends " Path: $.x | LineNumber: 0 | BytePositionInLine: 3." which we print ourselves.
    static string FirstSentence(string message)
    {
        int cut = message.IndexOf(" Path: ", StringComparison.Ordinal);
        if (cut < 0) cut = message.IndexOf(" LineNumber: ", StringComparison.Ordinal);
        return (cut < 0 ? message : message[..cut]).TrimEnd();
    }
}
