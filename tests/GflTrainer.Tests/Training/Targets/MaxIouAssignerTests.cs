using GflTrainer.Tests.Support;
using GflTrainer.Training.Targets;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Training.Targets;

/// <summary>RetinaNet's MaxIoUAssigner against mmdetection's loop transcribed in scripts/reference/gflref/max_iou_assigner.py
/// (positives, negatives, ignored, low-quality matches with ties, gt order, no gt, a gt outside every prior).</summary>
public class MaxIouAssignerTests
{
    public static IEnumerable<object[]> Cases => TestPaths.JsonCases("gfl", "max_iou");

    [Theory]
    [MemberData(nameof(Cases))]
    public void Assign_MatchesMmdetection(string file)
    {
        using var scope = NewDisposeScope();
        var f = GflFixture.Load("max_iou", file);
        var p = f.Params;
        var assigner = new MaxIouAssigner(p.GetProperty("pos_iou_thr").GetDouble(), p.GetProperty("neg_iou_thr").GetDouble(),
            p.GetProperty("min_pos_iou").GetDouble(), p.GetProperty("gt_max_assign_all").GetBoolean(), p.GetProperty("match_low_quality").GetBoolean());
        var gts = f.Input("gt_bboxes").reshape(-1, 4);
        var a = assigner.Assign(f.Input("priors"), gts, f.Input("gt_labels"));
        TensorAssert.Equal(f.Output("assigned_gt_inds"), a.GtIndex, $"{file} gt index");
        TensorAssert.Equal(f.Output("assigned_labels"), a.Labels, $"{file} labels");
        TensorAssert.Close(f.Output("max_overlaps"), a.MaxOverlaps, 1e-6, 1e-5, $"{file} max overlaps");
        Assert.Equal(f.Expected.GetProperty("num_pos").GetInt64(), (a.GtIndex > 0).sum().item<long>());
    }

    /// <summary>The vectorised low-quality step equals the reference's loop where the loop's order matters: two gts
    /// whose best priors coincide, the later gt keeps them; without gt_max_assign_all only each gt's first best prior.</summary>
    [Fact]
    public void LowQualityMatches_TheLaterGtWins_AndOnlyTheArgmaxWithoutAssignAll()
    {
        using var scope = NewDisposeScope();
        var priors = tensor(new float[] { 0, 0, 10, 10, 0, 0, 10, 10, 50, 50, 60, 60 }).reshape(3, 4);   // priors 0 and 1 equal
        var gts = tensor(new float[] { 2, 2, 6, 6, 3, 3, 7, 7 }).reshape(2, 4);                         // both best on priors 0 and 1
        var labels = tensor(new long[] { 4, 9 });
        var all = new MaxIouAssigner().Assign(priors, gts, labels);
        Assert.Equal(new long[] { 2, 2, 0 }, all.GtIndex.data<long>().ToArray());
        Assert.Equal(new long[] { 9, 9, -1 }, all.Labels.data<long>().ToArray());
        var first = new MaxIouAssigner(gtMaxAssignAll: false).Assign(priors, gts, labels);
        Assert.Equal(new long[] { 2, 0, 0 }, first.GtIndex.data<long>().ToArray());
    }
}
