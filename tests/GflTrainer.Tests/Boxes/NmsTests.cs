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
}
