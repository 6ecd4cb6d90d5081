using GflTrainer.Boxes;
using GflTrainer.Model;
using GflTrainer.Tests.Support;
using GflTrainer.Training.Targets;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Training.Targets;

public class AtssAssignerTests
{
    private static readonly int[] Strides = { 8, 16, 32, 64, 128 };

    public static IEnumerable<object[]> Cases => TestPaths.JsonCases("gfl", "atss");

    /// <summary>Every fixture with both ways of resolving an anchor claimed by several gts (dense: CUDA's, no host
    /// sync; sparse: the CPU's).</summary>
    public static IEnumerable<object[]> CasesBothWays =>
        Cases.SelectMany(c => new[] { new object[] { c[0], false }, new object[] { c[0], true } });

    [Theory]
    [MemberData(nameof(CasesBothWays))]
    public void Assign_MatchesMmdetection(string file, bool dense)
    {
        using var scope = NewDisposeScope();
        var f = GflFixture.Load("atss", file);
        var anchors = f.Input("anchors");
        var perLevel = GflFixture.Longs(f.Inputs.GetProperty("num_level_anchors"));
        var gtBoxes = f.Input("gt_bboxes");
        var gtLabels = f.Input("gt_labels");
        var numGts = gtBoxes.shape[0];

        var a = new AtssAssigner(f.Params.GetProperty("topk").GetInt32(), dense).Assign(anchors, perLevel, gtBoxes);

        TensorAssert.Equal(f.Output("assigned_gt_inds"), where(a.IsPositive, a.GtIndex + 1, zeros_like(a.GtIndex)), $"{file} gt_inds");
        var labels = numGts == 0
            ? full_like(a.GtIndex, -1)
            : where(a.IsPositive, gtLabels.index_select(0, a.GtIndex), full_like(a.GtIndex, -1));
        TensorAssert.Equal(f.Output("assigned_labels"), labels, $"{file} labels");
        TensorAssert.Close(f.Output("max_overlaps"), a.MaxOverlaps, 1e-6, 0, $"{file} max_overlaps");
        var maxIou = numGts == 0 ? zeros(anchors.shape[0]) : BoxOverlaps.Pairwise(anchors, gtBoxes).amax(new long[] { 1 });
        TensorAssert.Close(f.Output("max_iou_over_gts"), maxIou, 1e-6, 0, $"{file} max_iou_over_gts");
        TensorAssert.Close(f.Output("iou_threshold_per_gt"), a.IouThresholds, 1e-6, 0, $"{file} thresholds");
        Assert.Equal(f.Expected.GetProperty("num_candidates_per_gt").GetInt32(), a.CandidatesPerGt);
        var positivesPerGt = Enumerable.Range(0, (int)numGts)
            .Select(g => (a.IsPositive & (a.GtIndex == g)).sum().item<long>()).ToArray();
        Assert.Equal(GflFixture.Longs(f.Expected.GetProperty("num_positives_per_gt")), positivesPerGt);
        Assert.Equal(f.Expected.GetProperty("num_positives").GetInt64(), a.IsPositive.sum().item<long>());
        AssertGtsWithoutPositivesLostFairly(anchors, gtBoxes, a, file);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void ValidFlags_OfTheImagePadShape_SelectTheFixturesAnchors(string file)
    {
        using var scope = NewDisposeScope();
        var f = GflFixture.Load("atss", file);
        var batchPad = GflFixture.Shape(f.Params.GetProperty("batch_pad_shape"));
        var imagePad = GflFixture.Shape(f.Params.GetProperty("image_pad_shape"));
        var sizes = FeatmapSizes(batchPad);
        var generator = new AnchorGenerator(Strides);
        var valid = cat(sizes.Select((s, l) => generator.ValidFlags(l, s, imagePad)).ToList(), 0);
        TensorAssert.Equal(f.Input("valid_flags_in_batch_anchor_order"), valid, $"{file} valid flags");
        var anchors = cat(generator.GridAnchors(sizes).ToList(), 0).index_select(0, valid.nonzero().squeeze(1));
        TensorAssert.Equal(f.Input("anchors"), anchors, $"{file} valid anchors");
    }

    [Fact]
    public void Assign_WithNoGroundTruth_MarksEveryAnchorNegative()
    {
        using var scope = NewDisposeScope();
        var anchors = cat(new AnchorGenerator(Strides).GridAnchors(FeatmapSizes((64, 96))).ToList(), 0);
        var a = new AtssAssigner().Assign(anchors, new long[] { 96, 24, 6, 2, 1 }, zeros(0, 4));
        Assert.False(a.IsPositive.any().item<bool>());
        Assert.Equal(0f, a.MaxOverlaps.abs().max().item<float>());
        Assert.Equal(0, a.CandidatesPerGt);
    }

    /// <summary>The true ATSS property (not "every gt gets a positive"): checked on random images.</summary>
    [Fact]
    public void Assign_GtWithoutPositives_HasNoPassingCandidate_OrLostEachToAnEqualOrBetterGt()
    {
        using var scope = NewDisposeScope();
        var sizes = FeatmapSizes((160, 224));
        var anchors = cat(new AnchorGenerator(Strides).GridAnchors(sizes).ToList(), 0);
        var perLevel = sizes.Select(s => (long)s.H * s.W).ToArray();
        var random = new Random(11);
        var gtsWithout = 0;
        long contested = 0;
        for (var image = 0; image < 12; image++)
        {
            var count = random.Next(1, 25);
            var boxes = new float[count * 4];
            for (var g = 0; g < count; g++)
            {
                var w = (float)Math.Exp(random.NextDouble() * Math.Log(150 / 3.0)) * 3;
                var h = (float)Math.Exp(random.NextDouble() * Math.Log(150 / 3.0)) * 3;
                var x = (float)random.NextDouble() * (224 - w);
                var y = (float)random.NextDouble() * (160 - h);
                boxes[4 * g] = x; boxes[4 * g + 1] = y; boxes[4 * g + 2] = x + w; boxes[4 * g + 3] = y + h;
            }
            var gt = tensor(boxes).reshape(count, 4);
            var a = new AtssAssigner().Assign(anchors, perLevel, gt);
            gtsWithout += AssertGtsWithoutPositivesLostFairly(anchors, gt, a, $"random image {image}");
            // The dense resolution (CUDA's) gives exactly the same assignment.
            var dense = new AtssAssigner(denseConflicts: true).Assign(anchors, perLevel, gt);
            TensorAssert.Equal(a.IsPositive, dense.IsPositive, $"random image {image} positives");
            TensorAssert.Equal(a.GtIndex, dense.GtIndex, $"random image {image} gt index");
            TensorAssert.Equal(a.MaxOverlaps, dense.MaxOverlaps, $"random image {image} max overlaps");
            var passing = a.Candidates.masked_select(a.CandidatePasses);
            contested += passing.shape[0] - unique(passing).output.shape[0];   // anchors passing for more than one gt
        }
        Assert.True(gtsWithout > 0, "the random images should include gts without positives");
        Assert.True(contested > 0, "the random images should include anchors that pass for several gts");
    }

    // Returns how many gts had no positive.
    private static int AssertGtsWithoutPositivesLostFairly(Tensor anchors, Tensor gtBoxes, AtssAssignment a, string what)
    {
        var numGts = (int)gtBoxes.shape[0];
        if (numGts == 0) return 0;
        var overlaps = BoxOverlaps.Pairwise(anchors, gtBoxes);
        var isPositive = a.IsPositive.data<bool>().ToArray();
        var gtIndex = a.GtIndex.data<long>().ToArray();
        var candidates = a.Candidates;
        var passes = a.CandidatePasses;
        var without = 0;
        for (var g = 0; g < numGts; g++)
        {
            if (Enumerable.Range(0, isPositive.Length).Any(i => isPositive[i] && gtIndex[i] == g)) continue;
            without++;
            var passing = candidates[TensorIndex.Colon, g].masked_select(passes[TensorIndex.Colon, g]).data<long>().ToArray();
            foreach (var anchor in passing)
            {
                Assert.True(isPositive[anchor], $"{what}: gt {g} lost anchor {anchor}, which is not positive at all");
                var winner = (int)gtIndex[anchor];
                var winnerIou = overlaps[anchor, winner].item<float>();
                var ownIou = overlaps[anchor, g].item<float>();
                Assert.True(winnerIou > ownIou || (winnerIou == ownIou && winner < g),
                    $"{what}: gt {g} lost anchor {anchor} to gt {winner} with IoU {winnerIou} vs {ownIou}");
            }
        }
        return without;
    }

    internal static (int H, int W)[] FeatmapSizes((int H, int W) batchPad)
    {
        var sizes = new List<(int H, int W)> { (batchPad.H / 8, batchPad.W / 8), (batchPad.H / 16, batchPad.W / 16), (batchPad.H / 32, batchPad.W / 32) };
        for (var i = 0; i < 2; i++) sizes.Add(((sizes[^1].H + 1) / 2, (sizes[^1].W + 1) / 2));
        return sizes.ToArray();
    }
}
