using GflTrainer.Tests.Support;
using GflTrainer.Training.Losses;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Training.Losses;

public class GiouLossTests
{
    public static IEnumerable<object[]> Cases => TestPaths.JsonCases("gfl", "giou_loss");

    [Theory]
    [MemberData(nameof(Cases))]
    public void Giou_MatchesMmdetection_ValuesAndGradients(string file)
    {
        using var scope = NewDisposeScope();
        var f = GflFixture.Load("giou_loss", file);
        var loss = new GiouLoss(f.Params.GetProperty("loss_weight").GetDouble(), f.Params.GetProperty("eps").GetDouble());
        var avg = f.Params.GetProperty("avg_factor");
        double? avgFactor = avg.ValueKind == System.Text.Json.JsonValueKind.Null ? null : avg.GetDouble();
        var pred = f.Input("pred").requires_grad_(true);
        var target = f.Input("target");

        TensorAssert.Close(f.Output("loss_per_pair"), loss.Elementwise(pred, target), 1e-6, 1e-5, $"{file} per pair");
        var value = loss.Forward(pred, target, f.Input("weight"), avgFactor);
        TensorAssert.Scalar(f.Expected.GetProperty("loss").GetDouble(), value, 1e-6, 1e-5, $"{file} loss");
        value.backward();
        TensorAssert.Close(f.Output("grad_wrt_pred"), pred.grad!, 1e-7, 1e-4, $"{file} grad");
    }
}
