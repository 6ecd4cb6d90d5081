using System.Security.Cryptography;
using System.Text.Json;
using TorchSharp;
using GflTrainer.Runtime.Native;
using static TorchSharp.torch;

namespace GflTrainer.Checkpoints;

/// <summary>
/// A run's <c>checkpoints/</c> folder. Each checkpoint is a folder: <c>model.safetensors</c> (mmdetection names,
/// loadable from Python), <c>optimizer.safetensors</c> (SGD momentum by parameter name) and <c>meta.json</c>
/// (<see cref="TrainingCheckpoint"/> plus the size and SHA-256 of each weights file). A checkpoint is written
/// into a hidden temporary folder, flushed, then renamed into place; replacing an existing name goes through
/// <c>.NAME.old</c>, and a reader that finds NAME missing or incomplete falls back to it, so a kill at any moment
/// leaves the previous <c>last</c> loadable.
/// </summary>
internal sealed class CheckpointStore
{
    public const string ModelFile = "model.safetensors";
    public const string OptimizerFile = "optimizer.safetensors";
    public const string MetaFile = "meta.json";

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public string Root { get; }

    public CheckpointStore(string root) { Root = root; }

    /// <summary>Writes checkpoint <paramref name="name"/> (e.g. "last", "best", "epoch_3") atomically.</summary>
    public string Save(string name, IReadOnlyDictionary<string, Tensor> modelState,
        IReadOnlyDictionary<string, Tensor> optimizerState, TrainingCheckpoint meta)
    {
        Directory.CreateDirectory(Root);
        var final = Path.Combine(Root, name);
        var tmp = Path.Combine(Root, $".{name}.tmp-{Environment.ProcessId}");
        var old = Path.Combine(Root, $".{name}.old");
        if (Directory.Exists(tmp)) Directory.Delete(tmp, true);
        Directory.CreateDirectory(tmp);

        Safetensors.Write(Path.Combine(tmp, ModelFile), modelState);
        Safetensors.Write(Path.Combine(tmp, OptimizerFile), optimizerState);
        var files = new Dictionary<string, FileDigest>
        {
            [ModelFile] = FileDigest.Of(Path.Combine(tmp, ModelFile)),
            [OptimizerFile] = FileDigest.Of(Path.Combine(tmp, OptimizerFile)),
        };
        WriteDurably(Path.Combine(tmp, MetaFile), JsonSerializer.SerializeToUtf8Bytes(new MetaDocument(meta, files), Json));

        if (Directory.Exists(final))
        {
            if (Directory.Exists(old)) Directory.Delete(old, true);
            Directory.Move(final, old);   // a kill here: final missing, old complete -> readers use old
        }
        Directory.Move(tmp, final);
        if (Directory.Exists(old)) Directory.Delete(old, true);
        return final;
    }

    /// <summary>The complete checkpoint folder for <paramref name="name"/> (or its pre-replacement copy), or null.</summary>
    public string? Find(string name)
    {
        foreach (var candidate in new[] { Path.Combine(Root, name), Path.Combine(Root, $".{name}.old") })
            if (IsComplete(candidate)) return candidate;
        return null;
    }

    /// <summary>Epoch checkpoints present, oldest first.</summary>
    public IReadOnlyList<(int Epoch, string Path)> EpochCheckpoints() =>
        !Directory.Exists(Root) ? Array.Empty<(int, string)>() :
        Directory.EnumerateDirectories(Root, "epoch_*")
            .Select(d => (ok: int.TryParse(System.IO.Path.GetFileName(d)["epoch_".Length..], out var e), e, d))
            .Where(x => x.ok).OrderBy(x => x.e).Select(x => (x.e, x.d)).ToList();

    /// <summary>Deletes all but the newest <paramref name="keep"/> epoch checkpoints (keep &lt;= 0 keeps all).</summary>
    public void Prune(int keep)
    {
        if (keep <= 0) return;
        var all = EpochCheckpoints();
        foreach (var (_, path) in all.Take(Math.Max(0, all.Count - keep))) Directory.Delete(path, true);
    }

    /// <summary>Whether <paramref name="dir"/> holds a meta.json whose listed files exist with the recorded sizes.</summary>
    public static bool IsComplete(string dir)
    {
        var metaPath = Path.Combine(dir, MetaFile);
        if (!File.Exists(metaPath)) return false;
        try
        {
            var doc = JsonSerializer.Deserialize<MetaDocument>(File.ReadAllBytes(metaPath), Json);
            if (doc?.Checkpoint is null || doc.Files is null) return false;
            return doc.Files.All(f => File.Exists(Path.Combine(dir, f.Key)) && new FileInfo(Path.Combine(dir, f.Key)).Length == f.Value.Bytes);
        }
        catch (JsonException) { return false; }
    }

    /// <summary>Reads a checkpoint folder (or a path to a file inside it). Verifies sizes and SHA-256 digests.</summary>
    public static LoadedCheckpoint Load(string path, bool loadOptimizer = true)
    {
        var dir = File.Exists(path) ? Path.GetDirectoryName(Path.GetFullPath(path))! : path;
        var metaPath = Path.Combine(dir, MetaFile);
        if (!File.Exists(metaPath))
            throw new CheckpointException(dir, $"not a gfl checkpoint (no {MetaFile})");
        MetaDocument doc;
        try { doc = JsonSerializer.Deserialize<MetaDocument>(File.ReadAllBytes(metaPath), Json) ?? throw new JsonException("empty"); }
        catch (JsonException e) { throw new CheckpointException(metaPath, $"unreadable checkpoint metadata: {e.Message}"); }
        foreach (var (file, digest) in doc.Files)
        {
            if (!loadOptimizer && file == OptimizerFile) continue;
            var p = Path.Combine(dir, file);
            if (!File.Exists(p)) throw new CheckpointException(dir, $"checkpoint incomplete, {file} missing");
            var actual = FileDigest.Of(p);
            if (actual != digest)
                throw new CheckpointException(p, $"corrupt checkpoint file (size/sha256 differ from {MetaFile})");
        }
        var model = Safetensors.Read(Path.Combine(dir, ModelFile));
        var optimizer = loadOptimizer ? Safetensors.Read(Path.Combine(dir, OptimizerFile)) : null;
        return new LoadedCheckpoint(dir, doc.Checkpoint, model, optimizer);
    }

    private static void WriteDurably(string path, byte[] bytes)
    {
        using var fs = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None);
        fs.Write(bytes);
        fs.Flush(flushToDisk: true);
    }

    internal sealed record MetaDocument(TrainingCheckpoint Checkpoint, Dictionary<string, FileDigest> Files);

    internal sealed record FileDigest(long Bytes, string Sha256)
    {
        public static FileDigest Of(string path)
        {
            using var fs = File.OpenRead(path);
            var hash = SHA256.HashData(fs);
            return new FileDigest(fs.Length, Convert.ToHexString(hash).ToLowerInvariant());
        }
    }
}

/// <summary>A checkpoint read back: metadata plus CPU tensors (dispose to free).</summary>
internal sealed record LoadedCheckpoint(string Directory, TrainingCheckpoint Meta,
    SafetensorsContent Model, SafetensorsContent? Optimizer) : IDisposable
{
    public void Dispose() { Model.Dispose(); Optimizer?.Dispose(); }
}
