using GflTrainer.Boxes;
using GflTrainer.Tests.Support;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Boxes;

public class BoxOverlapsTests
{
    public static IEnumerable<object[]> Cases => TestPaths.JsonCases("gfl", "overlaps");

    private static readonly (string Key, OverlapMode Mode)[] Modes =
    {
        ("iou", OverlapMode.Iou), ("iof", OverlapMode.Iof), ("giou", OverlapMode.Giou),
        ("iou_aligned", OverlapMode.Iou), ("giou_aligned", OverlapMode.Giou),
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Overlaps_MatchMmdetection(string file)
    {
        using var scope = NewDisposeScope();
        var f = GflFixture.Load("overlaps", file);
        var boxes1 = f.Input("boxes1");
        var boxes2 = f.Input("boxes2");
        var eps = f.Params.GetProperty("eps").GetDouble();
        var checkedAny = false;
        foreach (var (key, mode) in Modes)
        {
            if (!f.Expected.TryGetProperty(key, out var element)) continue;
            var expected = GflFixture.ToTensor(element);
            var aligned = expected.dim() == 1;
            var b1 = boxes1.detach().clone().requires_grad_(aligned);
            var actual = aligned ? BoxOverlaps.Aligned(b1, boxes2, mode, eps) : BoxOverlaps.Pairwise(b1, boxes2, mode, eps);
            TensorAssert.Close(expected, actual, 1e-6, 0, $"{file} {key}");
            checkedAny = true;
            if (aligned && f.Expected.TryGetProperty($"grad_{key}_sum_wrt_boxes1", out var grad))
            {
                actual.sum().backward();
                TensorAssert.Close(GflFixture.ToTensor(grad), b1.grad!, 1e-6, 1e-4, $"{file} grad {key}");
            }
        }
        Assert.True(checkedAny, "no known overlap in the fixture");
    }

    [Fact]
    public void Giou_OfIdenticalBoxesIsOne_AndOfFarDisjointBoxesApproachesMinusOne()
    {
        using var scope = NewDisposeScope();
        var a = tensor(new float[] { 0, 0, 10, 10, 0, 0, 1, 1 }).reshape(2, 4);
        var b = tensor(new float[] { 0, 0, 10, 10, 99, 99, 100, 100 }).reshape(2, 4);
        var giou = BoxOverlaps.Aligned(a, b, OverlapMode.Giou).data<float>().ToArray();
        Assert.Equal(1f, giou[0], 6);
        Assert.InRange(giou[1], -1f, -0.99f);
    }
}
