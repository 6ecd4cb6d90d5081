using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using static TorchSharp.torch;

namespace GflTrainer.Checkpoints;

/// <summary>Named tensors read from a safetensors file, plus its optional <c>__metadata__</c> string map.
/// Owns the tensors (CPU, contiguous); dispose to free them.</summary>
internal sealed record SafetensorsContent(IReadOnlyDictionary<string, Tensor> Tensors,
    IReadOnlyDictionary<string, string> Metadata) : IDisposable
{
    public void Dispose()
    {
        foreach (var t in Tensors.Values) t.Dispose();
    }
}

/// <summary>Reader and writer for the safetensors format (Hugging Face): an 8-byte little-endian header length,
/// a UTF-8 JSON header <c>{name: {dtype, shape, data_offsets: [begin, end)}, "__metadata__": {str: str}}</c> with
/// offsets relative to the end of the header, then the raw little-endian tensor bytes. TorchSharp has no safetensors
/// support, and PyTorch <c>.pth</c> files need an unpickler, so weights cross from Python in this format.</summary>
internal static class Safetensors
{
    private const string MetadataKey = "__metadata__";

    /// <summary>Guards against reading a corrupt length as a multi-gigabyte header (the reference reader uses 100 MB).</summary>
    private const long MaxHeaderBytes = 100L << 20;

    private static readonly (string Name, ScalarType Type)[] DTypes =
    {
        ("F64", ScalarType.Float64), ("F32", ScalarType.Float32), ("F16", ScalarType.Float16),
        ("BF16", ScalarType.BFloat16), ("I64", ScalarType.Int64), ("I32", ScalarType.Int32),
        ("I16", ScalarType.Int16), ("I8", ScalarType.Int8), ("U8", ScalarType.Byte), ("BOOL", ScalarType.Bool),
    };

    private static ScalarType ParseDType(string name, string path, string key)
    {
        foreach (var (n, type) in DTypes)
            if (n == name) return type;
        throw new CheckpointException(path, $"tensor '{key}' has unsupported dtype '{name}'", key);
    }

    private static string DTypeName(ScalarType type, string key) =>
        DTypes.FirstOrDefault(d => d.Type == type).Name
            ?? throw new GflRuntimeException($"safetensors: tensor '{key}' has unsupported dtype {type}");

    /// <summary>Reads every tensor of <paramref name="path"/> onto the CPU.</summary>
    /// <exception cref="CheckpointException">missing file, malformed header, or offsets outside the file.</exception>
    public static SafetensorsContent Read(string path)
    {
        if (!File.Exists(path)) throw new CheckpointException(path, "weights file not found");
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        Span<byte> lengthBytes = stackalloc byte[8];
        if (stream.Read(lengthBytes) != 8) throw new CheckpointException(path, $"not a safetensors file (shorter than 8 bytes)");
        long headerLength = BinaryPrimitives.ReadInt64LittleEndian(lengthBytes);
        if (headerLength <= 0 || headerLength > MaxHeaderBytes || 8 + headerLength > stream.Length)
            throw new CheckpointException(path, $"not a safetensors file (header length {headerLength})");
        var headerBytes = new byte[headerLength];
        stream.ReadExactly(headerBytes);
        long dataStart = 8 + headerLength;
        long dataLength = stream.Length - dataStart;

        JsonObject header;
        try
        {
            header = JsonNode.Parse(headerBytes) as JsonObject
                ?? throw new CheckpointException(path, $"safetensors header is not a JSON object");
        }
        catch (JsonException e)
        {
            throw new CheckpointException(path, $"safetensors header is not valid JSON ({e.Message})", inner: e);
        }

        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            // Read in file order so the stream only moves forward.
            var entries = new List<(string Key, ScalarType Type, long[] Shape, long Begin, long End)>();
            foreach (var (key, node) in header)
            {
                if (key == MetadataKey)
                {
                    if (node is JsonObject meta)
                        foreach (var (mk, mv) in meta) metadata[mk] = mv?.GetValue<string>() ?? "";
                    continue;
                }
                if (node is not JsonObject entry || entry["dtype"] is null || entry["shape"] is not JsonArray shape
                    || entry["data_offsets"] is not JsonArray offsets || offsets.Count != 2)
                    throw new CheckpointException(path, $"malformed safetensors entry '{key}'", key);
                var type = ParseDType(entry["dtype"]!.GetValue<string>(), path, key);
                entries.Add((key, type, shape.Select(s => s!.GetValue<long>()).ToArray(),
                    offsets[0]!.GetValue<long>(), offsets[1]!.GetValue<long>()));
            }
            foreach (var (key, type, shape, begin, end) in entries.OrderBy(e => e.Begin))
            {
                var t = empty(shape, type, CPU);
                long expected = t.NumberOfElements * t.ElementSize;
                if (begin < 0 || end < begin || end > dataLength || end - begin != expected)
                {
                    t.Dispose();
                    throw new CheckpointException(path,
                        $"tensor '{key}' data_offsets [{begin}, {end}) do not hold {expected} bytes within the {dataLength}-byte data section", key);
                }
                tensors[key] = t;
                if (expected == 0) continue;
                stream.Position = dataStart + begin;
                stream.ReadExactly(t.bytes);
            }
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or JsonException)
        {
            foreach (var t in tensors.Values) t.Dispose();
            throw new CheckpointException(path, $"malformed safetensors header ({e.Message})", inner: e);
        }
        catch
        {
            foreach (var t in tensors.Values) t.Dispose();
            throw;
        }
        return new SafetensorsContent(tensors, metadata);
    }

    /// <summary>Writes <paramref name="tensors"/> (any device; copied to CPU) in name order. Writes to a temporary
    /// file next to <paramref name="path"/> and renames it, so a crash never leaves a truncated file behind.</summary>
    public static void Write(string path, IReadOnlyDictionary<string, Tensor> tensors,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        var names = tensors.Keys.OrderBy(k => k, StringComparer.Ordinal).ToArray();
        var header = new JsonObject();
        if (metadata is { Count: > 0 })
        {
            var meta = new JsonObject();
            foreach (var (k, v) in metadata.OrderBy(m => m.Key, StringComparer.Ordinal)) meta[k] = v;
            header[MetadataKey] = meta;
        }
        long offset = 0;
        foreach (var name in names)
        {
            if (name == MetadataKey) throw new ArgumentException($"'{MetadataKey}' is reserved in safetensors", nameof(tensors));
            var t = tensors[name];
            long size = t.NumberOfElements * t.ElementSize;
            header[name] = new JsonObject
            {
                ["dtype"] = DTypeName(t.dtype, name),
                ["shape"] = new JsonArray(t.shape.Select(s => (JsonNode)JsonValue.Create(s)).ToArray()),
                ["data_offsets"] = new JsonArray(JsonValue.Create(offset), JsonValue.Create(offset + size)),
            };
            offset += size;
        }
        var headerText = header.ToJsonString();
        // Pad the header with spaces to a multiple of 8 so the data section is aligned, as the reference writer does.
        int padding = (8 - Encoding.UTF8.GetByteCount(headerText) % 8) % 8;
        var headerBytes = Encoding.UTF8.GetBytes(headerText + new string(' ', padding));

        var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(directory);
        var temporary = Path.Combine(directory, $".{Path.GetFileName(path)}.{Environment.ProcessId}.tmp");
        try
        {
            using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
            {
                Span<byte> lengthBytes = stackalloc byte[8];
                BinaryPrimitives.WriteInt64LittleEndian(lengthBytes, headerBytes.Length);
                stream.Write(lengthBytes);
                stream.Write(headerBytes);
                foreach (var name in names)
                {
                    using var scope = NewDisposeScope();
                    var cpu = tensors[name].detach().cpu().contiguous();
                    if (cpu.NumberOfElements > 0) stream.Write(cpu.bytes);
                }
                stream.Flush(flushToDisk: true);
            }
            File.Move(temporary, path, overwrite: true);
        }
        catch
        {
            if (File.Exists(temporary)) File.Delete(temporary);
            throw;
        }
    }
}
