using GflTrainer.Boxes;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Boxes;

public class DistancePointBoxCoderTests
{
    [Fact]
    public void Encode_ClampsToRegMaxMinusPointOne_AndDecodeInvertsInsideTheRange()
    {
        using var scope = NewDisposeScope();
        var points = tensor(new float[] { 10, 10, 10, 10 }).reshape(2, 2);
        var boxes = tensor(new float[] { 7, 8.5f, 12, 30, 12, 0, 40, 11 }).reshape(2, 4);
        var d = DistancePointBoxCoder.Encode(points, boxes, 16).data<float>().ToArray();
        // b = 20 and r = 30 exceed 16 − 0.1 (float32 15.8999996); the second point is left of x1, so l clamps to 0.
        Assert.Equal(new[] { 3f, 1.5f, 2f, 15.9f, 0f, 10f, 15.9f, 1f }, d);
        var decoded = DistancePointBoxCoder.Decode(points.narrow(0, 0, 1), tensor(d.Take(4).ToArray()).reshape(1, 4));
        Assert.Equal(new[] { 7f, 8.5f, 12f, 25.9f }, decoded.data<float>().ToArray());
    }

    [Fact]
    public void Decode_WithMaxShape_ClampsXToWidthAndYToHeight()
    {
        using var scope = NewDisposeScope();
        var boxes = DistancePointBoxCoder.Decode(tensor(new float[] { 5, 5 }).reshape(1, 2),
            tensor(new float[] { 10, 2, 100, 100 }).reshape(1, 4), (H: 40, W: 60));
        Assert.Equal(new[] { 0f, 3f, 60f, 40f }, boxes.data<float>().ToArray());
    }
}
