using GflTrainer.Model;
using GflTrainer.Tests.Support;
using GflTrainer.Training.Losses;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Training.Losses;

public class DistributionFocalLossTests
{
    public static IEnumerable<object[]> Cases => TestPaths.JsonCases("gfl", "dfl");

    [Theory]
    [MemberData(nameof(Cases))]
    public void Dfl_MatchesMmdetection_ValuesAndGradients(string file)
    {
        using var scope = NewDisposeScope();
        var f = GflFixture.Load("dfl", file);
        var loss = new DistributionFocalLoss(f.Params.GetProperty("loss_weight").GetDouble());
        var target = f.Input("target");
        var weight = f.Input("weight");

        var logits = f.Input("logits").requires_grad_(true);
        var perSample = loss.Elementwise(logits, target);
        TensorAssert.Close(f.Output("loss_per_sample"), perSample, 1e-6, 1e-5, $"{file} per sample");
        perSample.sum().backward();
        TensorAssert.Close(f.Output("grad_sum_wrt_logits"), logits.grad!, 1e-7, 1e-4, $"{file} grad of sum");

        var logits2 = f.Input("logits").requires_grad_(true);
        var reduced = loss.Forward(logits2, target, weight, f.Params.GetProperty("avg_factor").GetDouble());
        TensorAssert.Scalar(f.Expected.GetProperty("loss_reduced").GetDouble(), reduced, 1e-6, 1e-5, $"{file} reduced");
        reduced.backward();
        TensorAssert.Close(f.Output("grad_reduced_wrt_logits"), logits2.grad!, 1e-7, 1e-4, $"{file} grad reduced");
    }

    [Theory]
    [InlineData(0.0f)]
    [InlineData(3.25f)]
    [InlineData(7.0f)]
    [InlineData(15.9f)]
    public void Dfl_IsMinimal_WhenTheNeighbouringBinsHoldTheTargetsProportions(float y)
    {
        using var scope = NewDisposeScope();
        var left = (int)y;
        var probabilities = full(17, 1e-12f);
        probabilities[left] = tensor(left + 1 - y);
        probabilities[left + 1] = tensor(y - left);
        var optimum = probabilities.clamp_min(1e-12f).log().reshape(1, 17).requires_grad_(true);
        var target = tensor(new[] { y });
        var loss = new DistributionFocalLoss(1.0);

        var atOptimum = loss.Elementwise(optimum, target);
        atOptimum.sum().backward();
        // Gradient of w_l·CE(l) + w_r·CE(r) is softmax − (w_l e_l + w_r e_r): zero at the optimum.
        Assert.True(optimum.grad!.abs().max().item<float>() < 1e-5f);
        // Its expectation (the Integral) is the target itself.
        var expectation = Integral.Forward(optimum.detach().repeat(1, 4), 16)[0, 0].item<float>();
        Assert.Equal(y, expectation, 3);

        manual_seed(7);
        var optimumValue = atOptimum.item<float>();
        for (var trial = 0; trial < 20; trial++)
        {
            var perturbed = optimum.detach() + randn(1, 17) * 0.3f;
            Assert.True(loss.Elementwise(perturbed, target).item<float>() >= optimumValue - 1e-6f);
        }
    }
}
