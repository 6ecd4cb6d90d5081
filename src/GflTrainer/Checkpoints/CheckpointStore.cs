using System.Security.Cryptography;
using System.Text.Json;
using TorchSharp;
using GflTrainer.Runtime;
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

    /// <summary>Test seam: called with the step about to run ("model.safetensors", "optimizer.safetensors", "meta.json",
    /// "sync", "retire", "publish"), so a test can fail a save at every write position.</summary>
    internal Action<string>? BeforeStep { get; init; }

    /// <summary>Writes checkpoint <paramref name="name"/> (e.g. "last", "best", "epoch_3") atomically and durably: free
    /// space is checked first; the files are written and fsynced in a hidden folder, which is fsynced, renamed into
    /// place and the parent fsynced before the previous copy is deleted. A failure (disk full included) removes the
    /// partial folder and puts the previous checkpoint back under its name.</summary>
    public string Save(string name, IReadOnlyDictionary<string, Tensor> modelState,
        IReadOnlyDictionary<string, Tensor> optimizerState, TrainingCheckpoint meta)
    {
        Directory.CreateDirectory(Root);
        var final = Path.Combine(Root, name);
        var tmp = Path.Combine(Root, $".{name}.tmp-{Environment.ProcessId}");
        var old = Path.Combine(Root, $".{name}.old");
        // The new copy is complete before the old one goes, so both must fit; 1 MiB for headers and meta.json.
        long needed = Bytes(modelState) + Bytes(optimizerState) + (1 << 20);
        DiskSpace.Require(Root, needed, $"checkpoint '{name}'");
        bool retired = false;
        string writing = tmp;
        try
        {
            if (Directory.Exists(tmp)) Directory.Delete(tmp, true);
            Directory.CreateDirectory(tmp);
            writing = Path.Combine(tmp, ModelFile); Step(ModelFile);
            Safetensors.Write(writing, modelState);
            writing = Path.Combine(tmp, OptimizerFile); Step(OptimizerFile);
            Safetensors.Write(writing, optimizerState);
            var files = new Dictionary<string, FileDigest>
            {
                [ModelFile] = FileDigest.Of(Path.Combine(tmp, ModelFile)),
                [OptimizerFile] = FileDigest.Of(Path.Combine(tmp, OptimizerFile)),
            };
            writing = Path.Combine(tmp, MetaFile); Step(MetaFile);
            WriteDurably(writing, JsonSerializer.SerializeToUtf8Bytes(new MetaDocument(meta, files), Json));
            writing = tmp; Step("sync");
            DiskSpace.SyncDirectory(tmp);

            if (Directory.Exists(final))
            {
                if (Directory.Exists(old)) Directory.Delete(old, true);
                writing = final; Step("retire");
                Directory.Move(final, old);   // a kill here: final missing, old complete -> readers use old
                retired = true;
            }
            writing = final; Step("publish");
            Directory.Move(tmp, final);
            DiskSpace.SyncDirectory(Root);   // the rename is durable before the previous copy is deleted
        }
        catch (Exception e)
        {
            Recover(tmp, final, old, retired);
            throw DiskSpace.Describe(e, writing, needed);
        }
        // The new copy is durable; a failure to delete the old one only leaves .NAME.old behind (Find prefers NAME).
        try { if (Directory.Exists(old)) Directory.Delete(old, true); }
        catch (IOException) { }
        return final;
    }

    private void Step(string step) => BeforeStep?.Invoke(step);

    /// <summary>After a failed save: the partial folder goes, and a retired previous copy returns under its name.</summary>
    private static void Recover(string tmp, string final, string old, bool retired)
    {
        try
        {
            if (Directory.Exists(tmp)) Directory.Delete(tmp, true);
            if (retired && !Directory.Exists(final) && Directory.Exists(old)) Directory.Move(old, final);
        }
        catch (IOException) { /* Find() still falls back to .NAME.old; the original error matters more */ }
    }

    private static long Bytes(IReadOnlyDictionary<string, Tensor> tensors) => tensors.Values.Sum(t => t.NumberOfElements * t.ElementSize);

    /// <summary>Deletes the temporary folders of saves that never finished (a run killed inside a checkpoint write leaves
    /// its <c>.NAME.tmp-PID</c>, a whole checkpoint's size). Call only while holding the work dir's lock: then no other
    /// process is writing here. Returns the folders removed.</summary>
    public IReadOnlyList<string> RemoveUnfinishedSaves()
    {
        if (!Directory.Exists(Root)) return [];
        var removed = new List<string>();
        foreach (var dir in Directory.EnumerateDirectories(Root, ".*.tmp-*"))
        {
            try { Directory.Delete(dir, true); removed.Add(dir); }
            catch (IOException) { }
        }
        return removed;
    }

    /// <summary>The complete checkpoint folder for <paramref name="name"/> (or its pre-replacement copy), or null.</summary>
    public string? Find(string name)
    {
        foreach (var candidate in new[] { Path.Combine(Root, name), Path.Combine(Root, $".{name}.old") })
            if (IsComplete(candidate)) return candidate;
        return null;
    }

    /// <summary>The newest checkpoint of this run that loads with the digests its meta.json records, for a resume:
    /// <c>last</c>, its pre-replacement copy and the <c>epoch_N</c> checkpoints, by iteration, newest first (<c>last</c>
    /// first on a tie). Each one passed over is reported to <paramref name="skipped"/> (folder, reason: missing file,
    /// corrupt digest with expected and actual values). Null when none is usable; <c>best</c> and <c>nan_iter_N</c>
    /// are not resume points.</summary>
    public LoadedCheckpoint? LoadNewestValid(Action<string, string> skipped)
    {
        var candidates = new List<(string Dir, long Iteration, int Order)>();
        var dirs = new[] { Path.Combine(Root, "last"), Path.Combine(Root, ".last.old") }.Concat(EpochCheckpoints().Select(e => e.Path).Reverse());
        int order = 0;
        foreach (var dir in dirs)
        {
            order++;
            if (!Directory.Exists(dir)) continue;
            try
            {
                var doc = JsonSerializer.Deserialize<MetaDocument>(File.ReadAllBytes(Path.Combine(dir, MetaFile)), Json);
                if (doc?.Checkpoint is null) throw new JsonException("no checkpoint record");
                candidates.Add((dir, doc.Checkpoint.Iteration, order));
            }
            catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException)
            {
                skipped(dir, $"unreadable {MetaFile}: {e.Message}");
            }
        }
        foreach (var c in candidates.OrderByDescending(c => c.Iteration).ThenBy(c => c.Order))
        {
            try { return Load(c.Dir); }
            catch (CheckpointException e) { skipped(c.Dir, e.Message); }
        }
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

    /// <summary>The metadata and total file size of a complete checkpoint folder, without reading its tensors (for
    /// listings); null when the folder is not a complete checkpoint.</summary>
    public static (TrainingCheckpoint Meta, long Bytes)? ReadMeta(string dir)
    {
        if (!IsComplete(dir)) return null;
        try
        {
            var doc = JsonSerializer.Deserialize<MetaDocument>(File.ReadAllBytes(Path.Combine(dir, MetaFile)), Json);
            return doc?.Checkpoint is null ? null : (doc.Checkpoint, doc.Files.Values.Sum(f => f.Bytes));
        }
        catch (JsonException) { return null; }
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
                throw new CheckpointException(p, $"corrupt or truncated checkpoint file: {actual.Bytes} bytes, sha256 {actual.Sha256}; " +
                    $"{MetaFile} records {digest.Bytes} bytes, sha256 {digest.Sha256}");
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
