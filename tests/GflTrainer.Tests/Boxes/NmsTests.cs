using GflTrainer.Boxes;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Boxes;

public class NmsTests
{
    [Fact]
    public void Batched_SuppressesOnlyAboveThresholdWithinAClass_AndSortsByScore()
    {
        using var scope = NewDisposeScope();
        // Given in shuffled order: A (0,0,10,10) 0.9 class 0 is kept first; B (0,0,9,9) 0.8 class 0 has IoU 0.81 with A
        // (suppressed); C, the same box in class 1, is kept; D (0,0,10,6) 0.3 class 0 has IoU exactly 0.6 with A
        // (equal is kept).
        var boxes = tensor(new float[]
        {
            0, 0, 10, 6,   // D
            0, 0, 9, 9,    // B
            0, 0, 10, 10,  // A
            0, 0, 9, 9,    // C
        }).reshape(4, 4);
        var scores = tensor(new float[] { 0.3f, 0.8f, 0.9f, 0.7f });
        var labels = tensor(new long[] { 0, 0, 0, 1 });
        var keep = Nms.Batched(boxes, scores, labels, 0.6).data<long>().ToArray();
        Assert.Equal(new long[] { 2, 3, 0 }, keep);
    }

    [Fact]
    public void Batched_WithNoBoxes_ReturnsEmpty()
    {
        using var scope = NewDisposeScope();
        var keep = Nms.Batched(zeros(0, 4), zeros(0), zeros(0, dtype: int64), 0.6);
        Assert.Equal(0, keep.shape[0]);
    }

    /// <summary>min_bbox_size decided with NMS on its one host copy: a box not wider and taller than the limit is neither
    /// kept nor suppresses another (mmdetection filters before NMS), and the result is that of filtering first.</summary>
    [Fact]
    public void Batched_WithAMinimumSize_IsNmsOfTheLargeBoxesOnly()
    {
        using var scope = NewDisposeScope();
        // S (0,0,4,10) 0.95 is 4 wide: out at min 4 (not > 4); without it A (0,0,5,10) 0.9 is kept and B, A shifted by
        // 0.5 (IoU 0.82), is suppressed by A; T (0,0,10,4.5) passes (4.5 > 4); at min 0, S suppresses A (IoU 0.8).
        var boxes = tensor(new float[]
        {
            0, 0, 5, 10,     // A
            0, 0, 4, 10,     // S
            0.5f, 0, 5.5f, 10, // B
            0, 0, 10, 4.5f,  // T
        }).reshape(4, 4);
        var scores = tensor(new float[] { 0.9f, 0.95f, 0.85f, 0.5f });
        var labels = tensor(new long[] { 0, 0, 0, 0 });
        Assert.Equal(new long[] { 0, 3 }, Nms.Batched(boxes, scores, labels, 0.6, minBoxSize: 4).data<long>().ToArray());
        Assert.Equal(new long[] { 1, 3 }, Nms.Batched(boxes, scores, labels, 0.6, minBoxSize: 0).data<long>().ToArray());
        Assert.Equal(new long[] { 1, 3 }, Nms.Batched(boxes, scores, labels, 0.6).data<long>().ToArray());
        // Filtering first, then NMS on the rest, gives the same boxes.
        var large = tensor(new long[] { 0, 2, 3 });
        var filtered = Nms.Batched(boxes.index_select(0, large), scores.index_select(0, large), labels.index_select(0, large), 0.6);
        Assert.Equal(new long[] { 0, 3 }, large.index_select(0, filtered).data<long>().ToArray());
    }
}
