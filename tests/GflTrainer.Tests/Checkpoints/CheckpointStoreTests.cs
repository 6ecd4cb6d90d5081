using GflTrainer.Checkpoints;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Checkpoints;

public class CheckpointStoreTests
{
    private static TrainingCheckpoint Meta(long iter) => new(1, iter, 3, 42, "", 1, 0,
        new[] { new CheckpointClass(0, 7, "cat") }, "train:\n  epochs: 2\n", double.NaN, "epoch");

    [Fact]
    public void SaveThenLoad_RoundTripsTensorsAndMeta()
    {
        using var scope = NewDisposeScope();
        var root = Directory.CreateTempSubdirectory("gfl-ckpt").FullName;
        var store = new CheckpointStore(root);
        var w = randn(3, 4);
        store.Save("last", new Dictionary<string, Tensor> { ["a.weight"] = w },
            new Dictionary<string, Tensor> { ["a.weight"] = w * 2 }, Meta(10));
        var found = store.Find("last");
        Assert.NotNull(found);
        using var loaded = CheckpointStore.Load(found!);
        Assert.True(loaded.Model.Tensors["a.weight"].equal(w).all().item<bool>());
        Assert.True(loaded.Optimizer!.Tensors["a.weight"].equal(w * 2).all().item<bool>());
        Assert.Equal(10, loaded.Meta.Iteration);
        Assert.Equal("cat", loaded.Meta.Classes[0].Name);
        Assert.True(double.IsNaN(loaded.Meta.BestAp));
    }

    [Fact]
    public void KillBetweenRenames_LeavesPreviousLastLoadable()
    {
        using var scope = NewDisposeScope();
        var root = Directory.CreateTempSubdirectory("gfl-ckpt").FullName;
        var store = new CheckpointStore(root);
        var empty = new Dictionary<string, Tensor>();
        store.Save("last", new Dictionary<string, Tensor> { ["x"] = ones(2) }, empty, Meta(5));
        // Simulate a kill after "last" was moved aside and before the new one was renamed in.
        Directory.Move(Path.Combine(root, "last"), Path.Combine(root, ".last.old"));
        Directory.CreateDirectory(Path.Combine(root, $".last.tmp-999"));
        File.WriteAllText(Path.Combine(root, ".last.tmp-999", "model.safetensors"), "half");
        var found = store.Find("last");
        Assert.EndsWith(".last.old", found);
        using var loaded = CheckpointStore.Load(found!);
        Assert.Equal(5, loaded.Meta.Iteration);
        // The next save cleans up and the new checkpoint wins.
        store.Save("last", new Dictionary<string, Tensor> { ["x"] = zeros(2) }, empty, Meta(6));
        Assert.EndsWith(Path.Combine(root, "last"), store.Find("last"));
        Assert.False(Directory.Exists(Path.Combine(root, ".last.old")));
    }

    [Fact]
    public void TruncatedWeights_AreRejectedWithTheFileName()
    {
        using var scope = NewDisposeScope();
        var root = Directory.CreateTempSubdirectory("gfl-ckpt").FullName;
        var store = new CheckpointStore(root);
        var dir = store.Save("epoch_1", new Dictionary<string, Tensor> { ["x"] = randn(100) }, new Dictionary<string, Tensor>(), Meta(1));
        var model = Path.Combine(dir, CheckpointStore.ModelFile);
        var bytes = File.ReadAllBytes(model);
        bytes[^1] ^= 0xFF;
        File.WriteAllBytes(model, bytes);
        var e = Assert.Throws<CheckpointException>(() => CheckpointStore.Load(dir));
        Assert.Equal(model, e.Path);
        File.WriteAllBytes(model, bytes[..^10]);
        Assert.False(CheckpointStore.IsComplete(dir));
    }

    [Fact]
    public void Prune_KeepsNewestEpochs()
    {
        var root = Directory.CreateTempSubdirectory("gfl-ckpt").FullName;
        var store = new CheckpointStore(root);
        var empty = new Dictionary<string, Tensor>();
        foreach (var e in new[] { 1, 2, 10, 3 }) store.Save($"epoch_{e}", empty, empty, Meta(e));
        store.Prune(2);
        Assert.Equal(new[] { 3, 10 }, store.EpochCheckpoints().Select(x => x.Epoch));
    }
}
