using GflTrainer.Data;
using GflTrainer.Data.Transforms;
using GflTrainer.Training.Losses;
using TorchSharp;
using Xunit;
using GflTrainer.Coco;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Data;

/// <summary>Loader behaviour on a tiny synthetic set (10 images of 64 px, resized to at most 96x64 to stay fast).</summary>
public sealed class DetectionLoaderTests : IDisposable
{
    readonly TempDir _dir = new();
    readonly string _ann;
    readonly string _images;
    static readonly MultiScale Small = new([new ResizeScale(96, 64)]);

    public DetectionLoaderTests()
    {
        SyntheticShapes.Write(_dir.Path, new SyntheticShapesOptions { Seed = 5, TrainImages = 10, ValImages = 0, ImageSize = 64, MinSide = 8, MaxSide = 40 });
        _ann = Path.Combine(_dir.Path, "annotations", "instances_train.json");
        _images = Path.Combine(_dir.Path, "images");
    }

    public void Dispose() => _dir.Dispose();

    CocoDataset Dataset() => CocoDataset.ForTraining(CocoAnnotations.Load(_ann), _images);

    DetectionLoader Train(int workers, long seed = 1, int batch = 2, int maxBad = 10, CocoDataset? ds = null) =>
        DetectionLoader.ForTraining(ds ?? Dataset(), new LoaderOptions { BatchSize = batch, Workers = workers, Seed = seed, MaxBadImages = maxBad }, CPU, Small);

    /// <summary>Batches reduced to comparable values: image ids, flips, a checksum of the pixels, boxes.</summary>
    static List<string> Fingerprint(IEnumerable<DetectionBatch> batches)
    {
        var result = new List<string>();
        foreach (var b in batches)
        {
            using (b)
            {
                var boxes = string.Join(";", b.GtBoxes.Select(t => string.Join(",", t.data<float>().ToArray())));
                result.Add($"{string.Join(",", b.Metas.Select(m => $"{m.ImageId}{(m.Flipped ? "f" : "")}"))} " +
                           $"{string.Join("x", b.Images.shape)} {b.Images.sum().item<float>():R} {boxes}");
            }
        }
        return result;
    }

    [Fact]
    public void SameSeedAndEpoch_GiveIdenticalBatches_WithOneOrTwoWorkers()
    {
        var sequential = Fingerprint(Train(workers: 0).Epoch(3));
        var one = Fingerprint(Train(workers: 1).Epoch(3));
        var two = Fingerprint(Train(workers: 2).Epoch(3));
        Assert.Equal(5, one.Count);
        Assert.Equal(sequential, one);
        Assert.Equal(one, two);
    }

    [Fact]
    public void Targets_built_by_the_workers_are_the_batchs_own_and_change_nothing_else()
    {
        var builder = Tests.Training.Losses.HostTargetsTests.Builder(GflTrainer.Config.HeadType.Gfl);
        var options = new LoaderOptions { BatchSize = 3, Workers = 2, Seed = 1 };
        var plain = Fingerprint(DetectionLoader.ForTraining(Dataset(), options, CPU, Small).Epoch(1));
        foreach (var workers in new[] { 0, 2 })
        {
            var loader = DetectionLoader.ForTraining(Dataset(), options with { Workers = workers }, CPU, Small, targets: new HostTargets(builder));
            var batches = loader.Epoch(1).ToList();
            foreach (var b in batches)
            {
                using var scope = NewDisposeScope();
                var pads = b.Metas.Select(m => (m.PadHeight, m.PadWidth)).ToList();
                var featmaps = builder.Anchors.FeatmapSizes(((int)b.Images.shape[2], (int)b.Images.shape[3]));
                var expected = builder.Build(featmaps, b.GtBoxes, b.GtLabels, pads, CPU);
                var actual = b.Targets ?? throw new Xunit.Sdk.XunitException("a batch without targets");
                Assert.Equal(featmaps, actual.FeatmapSizes);
                Assert.Equal(expected.PositivesPerImage, actual.PositivesPerImage);
                Assert.True(expected.Labels.equal(actual.Labels).all().item<bool>());
                Assert.True(expected.LabelWeights.equal(actual.LabelWeights).all().item<bool>());
                Assert.True(expected.BoxTargets.equal(actual.BoxTargets).all().item<bool>());
                var positives = new LevelRows(expected, b.Images.shape[0]).Positives(builder.NumClasses);
                Assert.Equal(positives.shape, actual.PositiveRows!.shape);
                Assert.True(positives.equal(actual.PositiveRows).all().item<bool>());
            }
            Assert.Contains(batches, b => b.Targets!.PositivesPerImage.Sum() > 0);
            Assert.Equal(plain, Fingerprint(batches));
        }
        Assert.All(DetectionLoader.ForTraining(Dataset(), options, CPU, Small).Epoch(1), b => { using (b) Assert.Null(b.Targets); });
    }

    [Fact]
    public void DifferentEpochs_ShuffleAndFlipDifferently()
    {
        var loader = Train(workers: 2);
        Assert.NotEqual(Fingerprint(loader.Epoch(0)), Fingerprint(loader.Epoch(1)));
        Assert.NotEqual(loader.Plan(0).Select(b => string.Join(",", b)), loader.Plan(1).Select(b => string.Join(",", b)));
    }

    [Fact]
    public void StartIteration_YieldsTheTailOfTheFullEpoch()
    {
        var full = Fingerprint(Train(workers: 2).Epoch(2));
        var tail = Fingerprint(Train(workers: 2).Epoch(2, startIteration: 3));
        Assert.Equal(full.Skip(3), tail);
        Assert.Throws<GflRuntimeException>(() => Train(workers: 0).Epoch(2, startIteration: 99).ToList());
    }

    [Fact]
    public void EveryImageAppearsOncePerEpoch_AndBatchesDoNotMixAspectGroups()
    {
        var ds = Dataset();
        // Mark images as portrait/landscape through their annotated size (the sampler groups on the JSON's w/h).
        var entries = ds.Entries.Select((e, i) => e with { Width = i % 3 == 0 ? 30 : 60, Height = 40 }).ToList();
        var plan = GroupBatchSampler.TrainBatches(entries, batchSize: 2, seed: 0, epoch: 0);
        Assert.All(plan, b => Assert.Single(b.Select(i => entries[i].Width >= entries[i].Height).Distinct()));
        // 4 portrait + 6 landscape -> both groups are even, so no padding: each index exactly once.
        Assert.Equal(Enumerable.Range(0, 10), plan.SelectMany(b => b).Order());
    }

    /// <summary>data.group_by_aspect_ratio false: one group, so batches mix orientations; still each image once.</summary>
    [Fact]
    public void WithoutAspectGrouping_BatchesMixOrientations_EveryImageOnce()
    {
        var ds = Dataset();
        var entries = ds.Entries.Select((e, i) => e with { Width = i % 2 == 0 ? 30 : 60, Height = 40 }).ToList();
        bool Mixed(IReadOnlyList<int[]> plan) => plan.Any(b => b.Select(i => entries[i].Width >= entries[i].Height).Distinct().Count() > 1);
        var plans = Enumerable.Range(0, 5).Select(epoch => GroupBatchSampler.TrainBatches(entries, 2, seed: 1, epoch: epoch, groupByAspectRatio: false)).ToList();
        Assert.All(plans, p => Assert.Equal(Enumerable.Range(0, 10), p.SelectMany(b => b).Order()));
        Assert.Contains(plans, Mixed);
        Assert.DoesNotContain(Enumerable.Range(0, 5).Select(epoch => GroupBatchSampler.TrainBatches(entries, 2, seed: 1, epoch: epoch)), Mixed);
    }

    [Fact]
    public void DistributedRanks_SplitTheEpochIntoEqualDisjointHalves()
    {
        var entries = Dataset().Entries;
        var r0 = GroupBatchSampler.TrainBatches(entries, 2, seed: 4, epoch: 1, rank: 0, worldSize: 2);
        var r1 = GroupBatchSampler.TrainBatches(entries, 2, seed: 4, epoch: 1, rank: 1, worldSize: 2);
        Assert.Equal(r0.Count, r1.Count);
        var all = r0.Concat(r1).SelectMany(b => b).ToList();
        Assert.Equal(Enumerable.Range(0, 10), all.Distinct().Order());   // padding may repeat a few, none missing
    }

    /// <summary>What makes W ranks train as one process (issue 17): for any world size and any mix of orientations,
    /// the ranks' batch i, concatenated in rank order, is the single process's batch i at W times the batch size, and
    /// each shard is padded (by repeating images of its group) to equal length.</summary>
    [Theory]
    [InlineData(2, 2, true)]
    [InlineData(3, 2, true)]
    [InlineData(4, 1, false)]
    [InlineData(2, 3, false)]
    public void RanksShardsOfEachGlobalBatch_AreTheSingleProcessBatch(int world, int batch, bool grouped)
    {
        var entries = Dataset().Entries.Select((e, i) => e with { Width = i % 3 == 0 ? 30 : 60, Height = 40 }).ToList();
        for (int epoch = 0; epoch < 3; epoch++)
        {
            var single = GroupBatchSampler.TrainBatches(entries, batch * world, seed: 9, epoch: epoch, groupByAspectRatio: grouped);
            var shards = Enumerable.Range(0, world)
                .Select(r => GroupBatchSampler.TrainBatches(entries, batch, seed: 9, epoch: epoch, rank: r, worldSize: world, groupByAspectRatio: grouped))
                .ToList();
            Assert.All(shards, s => Assert.Equal(single.Count, s.Count));
            for (int i = 0; i < single.Count; i++)
                Assert.Equal(single[i], shards.SelectMany(s => s[i]).ToArray());
            Assert.Equal(Enumerable.Range(0, entries.Count), single.SelectMany(b => b).Distinct().Order());
        }
    }

    /// <summary>Sharded evaluation: contiguous blocks in file order, so the ranks' results concatenated in rank order are
    /// the split in file order; every image exactly once.</summary>
    [Theory]
    [InlineData(10, 2, 1)]
    [InlineData(10, 3, 2)]
    [InlineData(3, 4, 2)]
    public void EvaluationShards_InRankOrder_AreTheSplitInFileOrder(int count, int world, int batch)
    {
        var all = Enumerable.Range(0, world).SelectMany(r => GroupBatchSampler.EvalBatches(count, batch, r, world)).SelectMany(b => b);
        Assert.Equal(Enumerable.Range(0, count), all);
    }

    [Fact]
    public void Evaluation_KeepsFileOrder_NoFlip_LastBatchShort()
    {
        var ds = CocoDataset.ForEvaluation(CocoAnnotations.Load(_ann), _images);
        var loader = DetectionLoader.ForEvaluation(ds, new LoaderOptions { BatchSize = 4, Workers = 2 }, CPU, new ResizeScale(96, 64));
        var metas = new List<ImageMeta>();
        foreach (var b in loader.Epoch(0)) using (b) metas.AddRange(b.Metas);
        Assert.Equal(ds.Entries.Select(e => e.ImageId), metas.Select(m => m.ImageId));
        Assert.All(metas, m => Assert.False(m.Flipped));
        Assert.Equal(new[] { 4, 4, 2 }, loader.Plan(0).Select(b => b.Length));
    }

    [Fact]
    public void StoppingEarly_CancelsTheWorkersWithoutHanging()
    {
        var loader = Train(workers: 2);
        var run = Task.Run(() =>
        {
            foreach (var b in loader.Epoch(0)) { b.Dispose(); break; }
        });
        Assert.True(run.Wait(TimeSpan.FromSeconds(60)), "the loader did not stop after the consumer broke out");
    }

    void Truncate(string fileName)
    {
        var path = Path.Combine(_images, fileName);
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length / 3)]);
    }

    [Fact]
    public void BadImage_IsSkippedInTraining_UntilTheLimit()
    {
        Truncate("train/000003.jpg");
        var loader = Train(workers: 2, maxBad: 5);
        var ids = new List<long>();
        foreach (var b in loader.Epoch(0)) using (b) ids.AddRange(b.Metas.Select(m => m.ImageId));
        Assert.DoesNotContain(3L, ids);
        Assert.Equal(9, ids.Distinct().Count());
        Assert.Equal(1, loader.BadImages);

        var strict = Train(workers: 2, maxBad: 0);
        var e = Assert.Throws<GflRuntimeException>(() => strict.Epoch(0).ToList().ForEach(b => b.Dispose()));
        Assert.Contains("too many bad images", e.Message);
        Assert.Contains("000003.jpg", e.Message);
    }

    [Fact]
    public void BadImage_InEvaluation_IsAnErrorNamingTheFile()
    {
        Truncate("train/000004.jpg");
        var ds = CocoDataset.ForEvaluation(CocoAnnotations.Load(_ann), _images);
        var loader = DetectionLoader.ForEvaluation(ds, new LoaderOptions { BatchSize = 2, Workers = 1 }, CPU, new ResizeScale(96, 64));
        var e = Assert.Throws<ImageDecodeException>(() => loader.Epoch(0).ToList().ForEach(b => b.Dispose()));
        Assert.EndsWith("000004.jpg", e.File);
    }

    [Fact]
    public void RealJpegs_LoadAtTheReferenceScale()
    {
        var ds = CocoDataset.ForTraining(CocoAnnotations.Load(TestPaths.Fixtures("data", "bccd_mini", "instances_mini.json")),
            TestPaths.Fixtures("data", "bccd_mini", "images"));
        Assert.Equal(3, ds.Count);
        var loader = DetectionLoader.ForTraining(ds, new LoaderOptions { BatchSize = 3, Workers = 2 }, CPU);
        using var batch = loader.Epoch(0).Single();
        Assert.Equal(new long[] { 3, 3, 800, 1088 }, batch.Images.shape);   // 640x480 -> 1067x800, padded
        Assert.All(batch.Metas, m => Assert.Equal((800, 1067), (m.ImageHeight, m.ImageWidth)));
        Assert.Equal(30, batch.GtLabels.Sum(l => (int)l.shape[0]));
    }
}
