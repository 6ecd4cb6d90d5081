using System.Text.Json;
using GflTrainer.Boxes;
using GflTrainer.Model;
using GflTrainer.Tests.Support;
using GflTrainer.Training.Losses;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Training.Losses;

public class GflLossTests
{
    public static IEnumerable<object[]> Cases => TestPaths.JsonCases("gfl", "head_loss");

    private sealed record Case(GflFixture F, GflLoss Loss, Tensor[] ClsScores, Tensor[] BoxPreds,
        IReadOnlyList<Tensor> GtBoxes, IReadOnlyList<Tensor> GtLabels, (int H, int W)[] PadShapes)
    {
        public LossBreakdown Run() => Loss.Compute(new HeadOutputs(ClsScores, BoxPreds), GtBoxes, GtLabels, PadShapes);
    }

    private static Case Load(string file)
    {
        var f = GflFixture.Load("head_loss", file);
        var p = f.Params;
        var loss = new GflLoss(
            p.GetProperty("num_classes").GetInt32(),
            p.GetProperty("reg_max").GetInt32(),
            GflFixture.Ints(p.GetProperty("strides")),
            p.GetProperty("topk").GetInt32(),
            p.GetProperty("loss_cls").GetProperty("beta").GetDouble(),
            p.GetProperty("loss_cls").GetProperty("loss_weight").GetDouble(),
            p.GetProperty("loss_bbox").GetProperty("loss_weight").GetDouble(),
            p.GetProperty("loss_dfl").GetProperty("loss_weight").GetDouble());
        var cls = GflFixture.ToTensors(f.Inputs.GetProperty("cls_scores")).Select(t => t.requires_grad_(true)).ToArray();
        var box = GflFixture.ToTensors(f.Inputs.GetProperty("bbox_preds")).Select(t => t.requires_grad_(true)).ToArray();
        return new Case(f, loss, cls, box, GflFixture.ToTensors(f.Inputs.GetProperty("gt_bboxes")),
            GflFixture.ToTensors(f.Inputs.GetProperty("gt_labels")), GflFixture.Shapes(p.GetProperty("image_pad_shapes")));
    }

    private static LossBreakdown Run(Case c) => c.Run();

    private static void AssertLosses(JsonElement expected, IReadOnlyList<Tensor> actual, string what)
    {
        var values = GflFixture.Doubles(expected);
        Assert.Equal(values.Length, actual.Count);
        for (var l = 0; l < values.Length; l++) TensorAssert.Scalar(values[l], actual[l], 1e-7, 1e-5, $"{what} P{l + 3}");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Loss_MatchesMmdetection_LossesAndNormalisers(string file)
    {
        using var scope = NewDisposeScope();
        var c = Load(file);
        var e = c.F.Expected;
        var b = Run(c);

        AssertLosses(e.GetProperty("loss_cls"), b.ClsPerLevel, $"{file} loss_cls");
        AssertLosses(e.GetProperty("loss_bbox"), b.BoxPerLevel, $"{file} loss_bbox");
        AssertLosses(e.GetProperty("loss_dfl"), b.DflPerLevel, $"{file} loss_dfl");
        TensorAssert.Scalar(e.GetProperty("loss_cls_sum").GetDouble(), b.Cls, 1e-7, 1e-5, $"{file} cls sum");
        TensorAssert.Scalar(e.GetProperty("loss_bbox_sum").GetDouble(), b.Box, 1e-7, 1e-5, $"{file} bbox sum");
        TensorAssert.Scalar(e.GetProperty("loss_dfl_sum").GetDouble(), b.Dfl, 1e-7, 1e-5, $"{file} dfl sum");
        TensorAssert.Scalar(e.GetProperty("total_loss").GetDouble(), b.Total, 1e-7, 1e-5, $"{file} total");

        Assert.Equal(GflFixture.Longs(e.GetProperty("num_pos_per_image")), b.Targets.PositivesPerImage.ToArray());
        Assert.Equal(e.GetProperty("cls_avg_factor").GetDouble(), b.ClsAvgFactor.item<double>());
        TensorAssert.Close(tensor(GflFixture.Doubles(e.GetProperty("bbox_weight_sum_per_level"))), b.WeightSumPerLevel, 1e-5, 0, $"{file} weight sums");
        TensorAssert.Scalar(e.GetProperty("bbox_weight_sum").GetDouble(), b.WeightSumPerLevel.sum(), 1e-5, 0, $"{file} weight sum");
        Assert.Equal(e.GetProperty("bbox_avg_factor").GetDouble(), b.BoxAvgFactor.item<float>(), 5);

        var scalars = b.ToScalars();
        Assert.Equal(e.GetProperty("total_loss").GetDouble(), scalars.Total, 4);
        Assert.Equal(["loss_cls", "loss_bbox", "loss_dfl"], scalars.Terms.Select(t => t.Name));
        Assert.Equal(e.GetProperty("loss_dfl_sum").GetDouble(), scalars["loss_dfl"], 4);
    }

    /// <summary><c>model.head.loss.cls: focal</c>: each level's classification term is Focal Loss with one-hot targets on
    /// the same ATSS assignment, label weights and normaliser; the box terms are those of QFL's run.</summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void FocalCls_IsFocalLossOnTheSameTargets_AndLeavesTheBoxTermsAlone(string file)
    {
        using var scope = NewDisposeScope();
        var c = Load(file);
        var qfl = Run(c);
        var focal = new FocalLoss(gamma: 2.0, alpha: 0.25, lossWeight: 1.5);
        var b = (c with { Loss = new GflLoss(c.Loss.NumClasses, c.F.Params.GetProperty("reg_max").GetInt32(),
            GflFixture.Ints(c.F.Params.GetProperty("strides")), c.F.Params.GetProperty("topk").GetInt32(),
            boxWeight: c.F.Params.GetProperty("loss_bbox").GetProperty("loss_weight").GetDouble(),
            dflWeight: c.F.Params.GetProperty("loss_dfl").GetProperty("loss_weight").GetDouble()) { Focal = focal } }).Run();
        long offset = 0;
        for (int l = 0; l < c.ClsScores.Length; l++)
        {
            var n = b.Targets.AnchorsPerLevel[l];
            var logits = c.ClsScores[l].detach().permute(0, 2, 3, 1).reshape(-1, c.Loss.NumClasses);
            var expected = focal.Forward(logits, b.Targets.Labels.narrow(1, offset, n).reshape(-1),
                b.Targets.LabelWeights.narrow(1, offset, n).reshape(-1), qfl.ClsAvgFactor.item<double>());
            TensorAssert.Scalar(expected.item<float>(), b.ClsPerLevel[l], 1e-7, 1e-6, $"{file} focal P{l + 3}");
            Assert.NotEqual(qfl.ClsPerLevel[l].item<float>(), b.ClsPerLevel[l].item<float>());
            TensorAssert.Scalar(qfl.BoxPerLevel[l].item<float>(), b.BoxPerLevel[l], 0, 0, $"{file} bbox P{l + 3}");
            TensorAssert.Scalar(qfl.DflPerLevel[l].item<float>(), b.DflPerLevel[l], 0, 0, $"{file} dfl P{l + 3}");
            offset += n;
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Loss_MatchesMmdetection_TargetsAndPositives(string file)
    {
        using var scope = NewDisposeScope();
        var c = Load(file);
        var t = c.F.Expected.GetProperty("targets");
        var b = Run(c);

        TensorAssert.Equal(GflFixture.ToTensor(t.GetProperty("anchors")), b.Targets.Anchors, $"{file} anchors");
        TensorAssert.Equal(GflFixture.ToTensor(t.GetProperty("valid_flags")), b.Targets.ValidFlags, $"{file} valid flags");
        TensorAssert.Equal(GflFixture.ToTensor(t.GetProperty("labels")), b.Targets.Labels, $"{file} labels");
        TensorAssert.Equal(GflFixture.ToTensor(t.GetProperty("label_weights")), b.Targets.LabelWeights, $"{file} label weights");
        TensorAssert.Equal(GflFixture.ToTensor(t.GetProperty("bbox_targets")), b.Targets.BoxTargets, $"{file} bbox targets");
        TensorAssert.Close(GflFixture.ToTensor(t.GetProperty("quality")), b.QualityTargets, 1e-5, 0, $"{file} quality");

        var p = c.F.Expected.GetProperty("positives");
        TensorAssert.Equal(GflFixture.ToTensor(p.GetProperty("index")), PositiveIndex(c, b), $"{file} positives index");
        Tensor Cat(Func<LevelPositives, Tensor> pick) => cat(b.Positives.Select(pick).ToList(), 0);
        TensorAssert.Close(GflFixture.ToTensor(p.GetProperty("weight")), Cat(x => x.Weight), 1e-5, 0, $"{file} weight");
        TensorAssert.Close(GflFixture.ToTensor(p.GetProperty("pred_dist")), Cat(x => x.PredDistances), 1e-5, 0, $"{file} pred_dist");
        TensorAssert.Close(GflFixture.ToTensor(p.GetProperty("pred_box")), Cat(x => x.PredBoxes), 1e-5, 0, $"{file} pred_box");
        TensorAssert.Close(GflFixture.ToTensor(p.GetProperty("target_box")), Cat(x => x.TargetBoxes), 1e-5, 0, $"{file} target_box");
        TensorAssert.Close(GflFixture.ToTensor(p.GetProperty("quality")), Cat(x => x.Quality), 1e-5, 0, $"{file} pos quality");
        TensorAssert.Close(GflFixture.ToTensor(p.GetProperty("dfl_target")), Cat(x => x.DflTargets), 1e-5, 0, $"{file} dfl_target");
        TensorAssert.Close(GflFixture.ToTensor(p.GetProperty("giou")),
            BoxOverlaps.Aligned(Cat(x => x.PredBoxes), Cat(x => x.TargetBoxes), OverlapMode.Giou), 1e-5, 0, $"{file} giou");
    }

    /// <summary>model.head.octave_base_scale reaches the ATSS anchors through the config: with 4 instead of 8 every
    /// anchor keeps its centre and has half the side.</summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void OctaveBaseScale_FromConfig_ScalesTheAtssAnchorsAboutTheirCentres(string file)
    {
        using var scope = NewDisposeScope();
        var c = Load(file);
        var p = c.F.Params;
        var model = new GflTrainer.Config.ModelConfig
        {
            Head = new GflTrainer.Config.HeadConfig
            {
                NumClasses = p.GetProperty("num_classes").GetInt32(), RegMax = p.GetProperty("reg_max").GetInt32(),
                Strides = GflFixture.Ints(p.GetProperty("strides")), OctaveBaseScale = 4,
            },
            Assigner = new GflTrainer.Config.AssignerConfig { TopK = p.GetProperty("topk").GetInt32() },
        };
        var halved = GflLoss.FromConfig(model).Compute(new HeadOutputs(c.ClsScores, c.BoxPreds), c.GtBoxes, c.GtLabels, c.PadShapes);

        var reference = GflFixture.ToTensor(c.F.Expected.GetProperty("targets").GetProperty("anchors"));
        var centre = (reference[.., 0..2] + reference[.., 2..4]) / 2;
        var expected = cat([centre + (reference[.., 0..2] - centre) / 2, centre + (reference[.., 2..4] - centre) / 2], 1);
        TensorAssert.Close(expected, halved.Targets.Anchors, 1e-6, 0, $"{file} anchors at octave_base_scale 4");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Loss_GradientsWrtRawHeadOutputs_MatchMmdetection(string file)
    {
        using var scope = NewDisposeScope();
        var c = Load(file);
        var e = c.F.Expected;
        var b = Run(c);
        b.Total.backward();

        var expectedCls = GflFixture.ToTensors(e.GetProperty("grad_cls_scores"));
        for (var l = 0; l < c.ClsScores.Length; l++)
            TensorAssert.Close(expectedCls[l], c.ClsScores[l].grad!, 1e-7, 1e-4, $"{file} grad cls P{l + 3}");

        // Expected bbox gradients are given at the positives only; everywhere else they are exactly 0.
        var indexTensor = GflFixture.ToTensor(e.GetProperty("positives").GetProperty("index"));
        var index = indexTensor.numel() == 0 ? Array.Empty<long>() : indexTensor.data<long>().ToArray();
        var rows = GflFixture.ToTensor(e.GetProperty("grad_bbox_preds_at_positives"));
        var expectedBox = c.BoxPreds.Select(t => zeros_like(t)).ToArray();
        for (var r = 0; r < rows.shape[0]; r++)
            expectedBox[index[4 * r]][index[4 * r + 1], TensorIndex.Colon, index[4 * r + 2], index[4 * r + 3]] = rows[r];
        for (var l = 0; l < c.BoxPreds.Length; l++)
            TensorAssert.Close(expectedBox[l], c.BoxPreds[l].grad!, 1e-7, 1e-4, $"{file} grad bbox P{l + 3}");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Loss_IsUnchanged_WhenTheGtOrderIsShuffled(string file)
    {
        using var scope = NewDisposeScope();
        var c = Load(file);
        var reference = Run(c).ToScalars();
        var random = new Random(5);
        var shuffledBoxes = new List<Tensor>();
        var shuffledLabels = new List<Tensor>();
        for (var i = 0; i < c.GtBoxes.Count; i++)
        {
            var order = Enumerable.Range(0, (int)c.GtBoxes[i].shape[0]).OrderBy(_ => random.Next()).Select(v => (long)v).ToArray();
            var perm = tensor(order, int64);
            shuffledBoxes.Add(c.GtBoxes[i].index_select(0, perm));
            shuffledLabels.Add(c.GtLabels[i].index_select(0, perm));
        }
        var shuffled = c.Loss.Compute(new HeadOutputs(c.ClsScores, c.BoxPreds), shuffledBoxes, shuffledLabels, c.PadShapes).ToScalars();
        foreach (var (x, y) in reference.Terms.Zip(shuffled.Terms, (a, b) => (a.Value, b.Value)))
            Assert.True(Math.Abs(x - y) <= 1e-6 * Math.Abs(x) + 1e-7, $"{file}: {x} vs {y} after shuffling gts");
    }

    // [level, image, y, x] of every positive, in processing order (level, image, y, x).
    private static Tensor PositiveIndex(Case c, LossBreakdown b)
    {
        var parts = new List<Tensor>();
        for (var l = 0; l < b.Positives.Count; l++)
        {
            var h = c.ClsScores[l].shape[2];
            var w = c.ClsScores[l].shape[3];
            var flat = b.Positives[l].Index;
            var image = flat.div(h * w, rounding_mode: RoundingMode.floor);
            var cell = flat.remainder(h * w);
            parts.Add(stack(new[] { full_like(flat, l), image, cell.div(w, rounding_mode: RoundingMode.floor), cell.remainder(w) }, 1));
        }
        return cat(parts, 0);
    }
}
