using GflTrainer.Tests.Support;
using GflTrainer.Training.Losses;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Training.Losses;

public class QualityFocalLossTests
{
    public static IEnumerable<object[]> Cases => TestPaths.JsonCases("gfl", "qfl");

    [Theory]
    [MemberData(nameof(Cases))]
    public void Qfl_MatchesMmdetection_ValuesAndGradients(string file)
    {
        using var scope = NewDisposeScope();
        var f = GflFixture.Load("qfl", file);
        var loss = new QualityFocalLoss(f.Params.GetProperty("beta").GetDouble(), f.Params.GetProperty("loss_weight").GetDouble());
        var logits = f.Input("logits").requires_grad_(true);
        var labels = f.Input("labels");
        var quality = f.Input("quality");
        var weight = f.Input("weight");

        var elementwise = loss.Elementwise(logits, labels, quality);
        TensorAssert.Close(f.Output("loss_elementwise"), elementwise, 1e-6, 1e-5, $"{file} elementwise");
        TensorAssert.Close(f.Output("loss_per_sample"), elementwise.sum(1), 1e-6, 1e-5, $"{file} per sample");
        elementwise.sum().backward();
        TensorAssert.Close(f.Output("grad_sum_elementwise_wrt_logits"), logits.grad!, 1e-7, 1e-4, $"{file} grad of sum");

        var logits2 = f.Input("logits").requires_grad_(true);
        var reduced = loss.Forward(logits2, labels, quality, weight, f.Params.GetProperty("avg_factor").GetDouble());
        TensorAssert.Scalar(f.Expected.GetProperty("loss_reduced").GetDouble(), reduced, 1e-6, 1e-5, $"{file} reduced");
        reduced.backward();
        TensorAssert.Close(f.Output("grad_reduced_wrt_logits"), logits2.grad!, 1e-7, 1e-4, $"{file} grad reduced");
    }

    /// <summary>Forward's hand-written gradient (one autograd node) against autograd through the plain formula.</summary>
    [Theory]
    [InlineData(2.0)]
    [InlineData(1.5)]
    [InlineData(3.0)]
    public void Forward_ValueAndGradientEqualAutogradOfTheElementwiseFormula(double beta)
    {
        using var scope = NewDisposeScope();
        manual_seed(11);
        const int rows = 300, classes = 7;
        var raw = randn(rows, classes, dtype: float64) * 5;
        var labels = randint(0, classes + 1, rows);       // classes = background
        var quality = rand(rows, dtype: float64);
        quality[0] = raw[0, labels[0].item<long>() % classes].sigmoid();   // |y − σ| = 0 on one positive (if row 0 is one)
        var weight = (rand(rows, dtype: float64) > 0.2).to(float64);
        var loss = new QualityFocalLoss(beta, lossWeight: 1.7);

        var a = raw.clone().requires_grad_(true);
        var expected = 1.7 * (loss.Elementwise(a, labels, quality).sum(1) * weight).sum() / (12.5 + WeightReduceLoss.Float32Eps);
        expected.backward();
        var b = raw.clone().requires_grad_(true);
        var actual = loss.Forward(b, labels, quality, weight, 12.5);
        (actual * 3).backward();   // a non-unit upstream gradient

        TensorAssert.Scalar(expected.item<double>(), actual, 1e-12, 1e-10, "value");
        TensorAssert.Close(a.grad! * 3, b.grad!, 1e-12, 1e-9, "gradient");
    }

    [Fact]
    public void Elementwise_EqualsBceTimesDistanceToSigmoidToTheBeta()
    {
        using var scope = NewDisposeScope();
        manual_seed(3);
        const int rows = 32, classes = 5;
        var logits = randn(rows, classes) * 4;
        var labels = randint(0, classes + 1, rows);   // classes = background
        var quality = rand(rows);
        var actual = new QualityFocalLoss(beta: 2.0).Elementwise(logits, labels, quality).to(float64).data<double>().ToArray();

        var z = logits.to(float64).data<double>().ToArray();
        var y = labels.data<long>().ToArray();
        var q = quality.to(float64).data<double>().ToArray();
        for (var i = 0; i < rows; i++)
        for (var c = 0; c < classes; c++)
        {
            var t = y[i] == c ? q[i] : 0.0;
            var x = z[i * classes + c];
            // log-sum-exp form of -[t log σ + (1-t) log(1-σ)], in double.
            var bce = Math.Max(x, 0) - x * t + Math.Log(1 + Math.Exp(-Math.Abs(x)));
            var sigma = 1 / (1 + Math.Exp(-x));
            var expected = bce * Math.Pow(Math.Abs(t - sigma), 2);
            Assert.True(Math.Abs(actual[i * classes + c] - expected) <= 1e-5 + 1e-5 * Math.Abs(expected),
                $"row {i} class {c}: {actual[i * classes + c]} vs {expected}");
        }
    }
}
