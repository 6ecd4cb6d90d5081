using GflTrainer.Boxes;
using GflTrainer.Tests.Support;
using GflTrainer.Training.Targets;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Boxes;

/// <summary>DeltaXYWHBBoxCoder and ATSS's centerness target against scripts/reference/make_dense_head_fixtures.py.</summary>
public class DeltaXywhBoxCoderTests
{
    public static IEnumerable<object[]> Cases => TestPaths.JsonCases("gfl", "delta_coder");

    [Theory]
    [MemberData(nameof(Cases))]
    public void EncodeDecodeAndCenterness_MatchMmdetection(string file)
    {
        using var scope = NewDisposeScope();
        var f = GflFixture.Load("delta_coder", file);
        var coder = new DeltaXywhBoxCoder(GflFixture.Doubles(f.Params.GetProperty("means")), GflFixture.Doubles(f.Params.GetProperty("stds")),
            f.Params.GetProperty("wh_ratio_clip").GetDouble());
        var anchors = f.Input("anchors");
        var gts = f.Input("gt_bboxes");
        var deltas = f.Input("deltas");
        TensorAssert.Close(f.Output("encoded"), coder.Encode(anchors, gts), 1e-6, 1e-5, $"{file} encode");
        TensorAssert.Close(f.Output("decoded"), coder.Decode(anchors, deltas), 1e-4, 1e-5, $"{file} decode");
        TensorAssert.Close(f.Output("decoded_clipped"), coder.Decode(anchors, deltas, GflFixture.Shape(f.Params.GetProperty("max_shape"))),
            1e-4, 1e-5, $"{file} decode clipped");
        TensorAssert.Close(f.Output("decoded_encoded"), coder.Decode(anchors, coder.Encode(anchors, gts)), 1e-3, 1e-5, $"{file} round trip");
        TensorAssert.Close(gts, coder.Decode(anchors, coder.Encode(anchors, gts)), 1e-3, 1e-5, $"{file} decode(encode(gt)) = gt");
        TensorAssert.Close(f.Output("centerness"), CenternessTarget.Compute(anchors, gts), 1e-6, 1e-5, $"{file} centerness");
    }

    [Fact]
    public void Decode_ClampsTheSizeRatio_SoThatHugeDeltasStayFinite()
    {
        using var scope = NewDisposeScope();
        var coder = new DeltaXywhBoxCoder(stds: [0.1, 0.1, 0.2, 0.2]);
        var prior = tensor(new float[] { 0, 0, 10, 20 }).reshape(1, 4);
        var box = coder.Decode(prior, tensor(new float[] { 0, 0, 1e4f, -1e4f }).reshape(1, 4)).data<float>().ToArray();
        // w = 10 · 1000/16 = 625 about the centre x 5, h = 20 · 16/1000 = 0.32 about y 10.
        Assert.Equal(new[] { 5 - 312.5f, 10 - 0.16f, 5 + 312.5f, 10 + 0.16f }, box, new FloatTolerance(1e-3f));
    }

    sealed class FloatTolerance(float tolerance) : IEqualityComparer<float>
    {
        public bool Equals(float a, float b) => Math.Abs(a - b) <= tolerance;
        public int GetHashCode(float x) => 0;
    }
}
