using GflTrainer.Checkpoints;
using GflTrainer.Runtime;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Checkpoints;

/// <summary>Faults while writing or reading checkpoints: a full disk at every write position, a corrupt <c>last</c>
/// under an unattended resume, a corrupt explicit checkpoint.</summary>
public class CheckpointDurabilityTests
{
    static TrainingCheckpoint Meta(long iter) => new(1, iter, 0, 42, "", 1, 0,
        new[] { new CheckpointClass(0, 7, "cat") }, "train:\n  epochs: 2\n", double.NaN, "epoch");

    static Dictionary<string, Tensor> Weights(float v) => new() { ["w"] = full(1000, v) };

    /// <summary>What the kernel raises on a full disk (errno 28 in HResult on Unix), as the injected fault.</summary>
    static IOException Enospc(string where) => new($"No space left on device : '{where}'", 28);

    /// <summary>The real ENOSPC: /dev/full fails every write with it, and it is recognised and described.</summary>
    [Fact]
    public void RealEnospc_IsRecognisedAndNamesThePathAndTheSpace()
    {
        var e = Assert.ThrowsAny<IOException>(() =>
        {
            using var fs = new FileStream("/dev/full", FileMode.Open, FileAccess.Write);
            fs.Write(new byte[1 << 16]);
            fs.Flush(flushToDisk: true);
        });
        Assert.True(DiskSpace.IsOutOfSpace(e));
        var described = Assert.IsType<DiskFullException>(DiskSpace.Describe(e, "/tmp/x/model.safetensors", 300L << 20));
        Assert.StartsWith("disk full writing /tmp/x/model.safetensors: needed ~300 MB, ", described.Message);
        Assert.Contains("MB free", described.Message);
        Assert.False(DiskSpace.IsOutOfSpace(new IOException("Permission denied", 13)));
        Assert.Same(e, DiskSpace.Describe(e, "p", 0) is DiskFullException d ? d.InnerException : null);
    }

    [Fact]
    public void FreeSpacePreflight_RefusesBeforeWriting()
    {
        var root = Directory.CreateTempSubdirectory("gfl-free").FullName;
        Assert.True(DiskSpace.FreeBytes(root) > 0);
        Assert.True(DiskSpace.FreeBytes(Path.Combine(root, "not", "yet")) > 0);   // the nearest existing folder counts
        var e = Assert.Throws<DiskFullException>(() => DiskSpace.Require(root, long.MaxValue / 4, "checkpoint 'last'"));
        Assert.Contains("checkpoint 'last' needs ~", e.Message);
        Assert.Equal(long.MaxValue / 4, e.NeededBytes);
        DiskSpace.Require(root, 1, "a byte");
        DiskSpace.SyncDirectory(root);
        Assert.Throws<IOException>(() => DiskSpace.SyncDirectory(Path.Combine(root, "missing")));
    }

    /// <summary>The disk fills at each write position of a save in turn: the error names the file being written, no
    /// partial folder stays behind, the previous <c>last</c> still loads, and the next save works.</summary>
    [Theory]
    [InlineData("model.safetensors")]
    [InlineData("optimizer.safetensors")]
    [InlineData("meta.json")]
    [InlineData("sync")]
    [InlineData("retire")]
    [InlineData("publish")]
    public void DiskFullAtEveryWritePosition_KeepsThePreviousLast(string failAt)
    {
        using var scope = NewDisposeScope();
        var root = Directory.CreateTempSubdirectory("gfl-enospc").FullName;
        new CheckpointStore(root).Save("last", Weights(1), Weights(10), Meta(5));
        var steps = new List<string>();
        var faulty = new CheckpointStore(root)
        {
            BeforeStep = step =>
            {
                steps.Add(step);
                if (step == failAt) throw Enospc(Path.Combine(root, step));
            },
        };

        var e = Assert.Throws<DiskFullException>(() => faulty.Save("last", Weights(2), Weights(20), Meta(6)));

        Assert.Equal(failAt, steps[^1]);
        Assert.Contains(root, e.Path);
        if (failAt.EndsWith(".safetensors") || failAt == "meta.json") Assert.EndsWith(failAt, e.Path);
        Assert.Empty(Directory.GetDirectories(root, ".last.tmp-*"));
        Assert.Equal([Path.Combine(root, "last")], Directory.GetDirectories(root));
        using (var previous = CheckpointStore.Load(Path.Combine(root, "last")))
        {
            Assert.Equal(5, previous.Meta.Iteration);
            Assert.Equal(1f, previous.Model.Tensors["w"][0].item<float>());
        }
        new CheckpointStore(root).Save("last", Weights(3), Weights(30), Meta(7));
        using var next = CheckpointStore.Load(Path.Combine(root, "last"));
        Assert.Equal(7, next.Meta.Iteration);
    }

    /// <summary>An unattended resume passes over a corrupt <c>last</c> (and a corrupt newer epoch checkpoint) to the
    /// newest one that verifies, reporting each skipped folder with expected and actual digests.</summary>
    [Fact]
    public void NewestValid_SkipsCorruptCheckpoints_NewestFirst()
    {
        using var scope = NewDisposeScope();
        var root = Directory.CreateTempSubdirectory("gfl-fallback").FullName;
        var store = new CheckpointStore(root);
        store.Save("epoch_1", Weights(1), Weights(1), Meta(3));
        store.Save("epoch_2", Weights(2), Weights(2), Meta(6));
        store.Save("last", Weights(2), Weights(2), Meta(6));
        store.Save("best", Weights(9), Weights(9), Meta(99));   // not a resume point

        var skipped = new List<(string Dir, string Reason)>();
        using (var ok = store.LoadNewestValid((d, r) => skipped.Add((d, r))))
            Assert.Equal(Path.Combine(root, "last"), ok!.Directory);   // last first on a tie with epoch_2
        Assert.Empty(skipped);

        FlipLastByte(Path.Combine(root, "last", CheckpointStore.ModelFile));
        using (var ok = store.LoadNewestValid((d, r) => skipped.Add((d, r))))
            Assert.Equal(Path.Combine(root, "epoch_2"), ok!.Directory);
        var (dir, reason) = Assert.Single(skipped);
        Assert.Equal(Path.Combine(root, "last"), dir);
        Assert.Contains("model.safetensors: corrupt or truncated checkpoint file", reason);
        Assert.Contains("meta.json records 4", reason);   // expected size and digest, beside the actual ones

        skipped.Clear();
        File.Delete(Path.Combine(root, "epoch_2", CheckpointStore.OptimizerFile));
        using (var ok = store.LoadNewestValid((d, r) => skipped.Add((d, r))))
            Assert.Equal(Path.Combine(root, "epoch_1"), ok!.Directory);
        Assert.Equal([Path.Combine(root, "last"), Path.Combine(root, "epoch_2")], skipped.Select(s => s.Dir));
        Assert.Contains("optimizer.safetensors missing", skipped[1].Reason);

        skipped.Clear();
        File.WriteAllText(Path.Combine(root, "epoch_1", CheckpointStore.MetaFile), "{ not json");
        Assert.Null(store.LoadNewestValid((d, r) => skipped.Add((d, r))));
        Assert.Equal(3, skipped.Count);
        Assert.Contains("unreadable meta.json", skipped.Single(s => s.Dir.EndsWith("epoch_1")).Reason);
    }

    [Fact]
    public void ExplicitCorruptOrTruncatedCheckpoint_NamesExpectedAndActualSizeAndDigest()
    {
        using var scope = NewDisposeScope();
        var root = Directory.CreateTempSubdirectory("gfl-corrupt").FullName;
        var dir = new CheckpointStore(root).Save("epoch_1", Weights(1), Weights(1), Meta(3));
        var model = Path.Combine(dir, CheckpointStore.ModelFile);
        long size = new FileInfo(model).Length;
        File.WriteAllBytes(model, File.ReadAllBytes(model)[..100]);

        var e = Assert.Throws<CheckpointException>(() => CheckpointStore.Load(dir));

        Assert.Equal(model, e.Path);
        Assert.Matches($"100 bytes, sha256 [0-9a-f]{{64}}; meta.json records {size} bytes, sha256 [0-9a-f]{{64}}", e.Message);
    }

    /// <summary>A run killed inside a checkpoint write leaves its temporary folder (a whole checkpoint's size); the next
    /// run (holding the work-dir lock) removes such folders and nothing else.</summary>
    [Fact]
    public void UnfinishedSavesOfKilledRuns_AreRemoved_CheckpointsKept()
    {
        using var scope = NewDisposeScope();
        var root = Directory.CreateTempSubdirectory("gfl-unfinished").FullName;
        var store = new CheckpointStore(root);
        store.Save("last", Weights(1), Weights(1), Meta(3));
        store.Save("epoch_1", Weights(1), Weights(1), Meta(3));
        Directory.CreateDirectory(Path.Combine(root, ".last.old"));
        foreach (var tmp in new[] { ".last.tmp-4242", ".epoch_2.tmp-77" })
        {
            Directory.CreateDirectory(Path.Combine(root, tmp));
            File.WriteAllText(Path.Combine(root, tmp, ".model.safetensors.4242.tmp"), "half");
        }

        var removed = store.RemoveUnfinishedSaves();

        Assert.Equal([".epoch_2.tmp-77", ".last.tmp-4242"], removed.Select(Path.GetFileName).Order());
        Assert.Equal([".last.old", "epoch_1", "last"], Directory.GetDirectories(root).Select(Path.GetFileName).Order());
        Assert.Empty(new CheckpointStore(Path.Combine(root, "absent")).RemoveUnfinishedSaves());
    }

    static void FlipLastByte(string path)
    {
        var bytes = File.ReadAllBytes(path);
        bytes[^1] ^= 0xFF;
        File.WriteAllBytes(path, bytes);
    }
}
