using GflTrainer.Tests.Support;
using GflTrainer.Training.Losses;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Training.Losses;

public class FocalLossTests
{
    /// <summary>Fixtures of scripts/reference/make_focal_fixtures.py (mmdetection's py_sigmoid_focal_loss transcribed).</summary>
    public static IEnumerable<object[]> Cases => TestPaths.JsonCases("gfl", "focal");

    [Theory]
    [MemberData(nameof(Cases))]
    public void Focal_MatchesMmdetection_ValuesAndGradients(string file)
    {
        using var scope = NewDisposeScope();
        var f = GflFixture.Load("focal", file);
        var loss = new FocalLoss(f.Params.GetProperty("gamma").GetDouble(), f.Params.GetProperty("alpha").GetDouble(),
            f.Params.GetProperty("loss_weight").GetDouble());
        var logits = f.Input("logits").requires_grad_(true);
        var labels = f.Input("labels");
        var weight = f.Input("weight");

        var elementwise = loss.Elementwise(logits, labels);
        TensorAssert.Close(f.Output("loss_elementwise"), elementwise, 1e-6, 1e-5, $"{file} elementwise");
        TensorAssert.Close(f.Output("loss_per_sample"), elementwise.sum(1), 1e-6, 1e-5, $"{file} per sample");
        elementwise.sum().backward();
        TensorAssert.Close(f.Output("grad_sum_elementwise_wrt_logits"), logits.grad!, 1e-7, 1e-4, $"{file} grad of sum");

        var logits2 = f.Input("logits").requires_grad_(true);
        var reduced = loss.Forward(logits2, labels, weight, f.Params.GetProperty("avg_factor").GetDouble());
        TensorAssert.Scalar(f.Expected.GetProperty("loss_reduced").GetDouble(), reduced, 1e-6, 1e-5, $"{file} reduced");
        reduced.backward();
        TensorAssert.Close(f.Output("grad_reduced_wrt_logits"), logits2.grad!, 1e-7, 1e-4, $"{file} grad reduced");
    }

    /// <summary>Forward's hand-written gradient (one autograd node) against autograd through the plain formula, in
    /// float64, for several γ and α.</summary>
    [Theory]
    [InlineData(2.0, 0.25)]
    [InlineData(1.5, 0.5)]
    [InlineData(3.0, 0.75)]
    [InlineData(0.0, 0.25)]
    public void Forward_ValueAndGradientEqualAutogradOfTheElementwiseFormula(double gamma, double alpha)
    {
        using var scope = NewDisposeScope();
        manual_seed(11);
        const int rows = 300, classes = 7;
        var raw = randn(rows, classes, dtype: float64) * 5;
        var labels = randint(0, classes + 1, rows);       // classes = background
        var weight = (rand(rows, dtype: float64) > 0.2).to(float64);
        var loss = new FocalLoss(gamma, alpha, lossWeight: 1.7);

        var a = raw.clone().requires_grad_(true);
        var expected = 1.7 * (loss.Elementwise(a, labels).sum(1) * weight).sum() / (12.5 + WeightReduceLoss.Float32Eps);
        expected.backward();
        var b = raw.clone().requires_grad_(true);
        var actual = loss.Forward(b, labels, weight, 12.5);
        (actual * 3).backward();   // a non-unit upstream gradient

        TensorAssert.Scalar(expected.item<double>(), actual, 1e-12, 1e-10, "value");
        TensorAssert.Close(a.grad! * 3, b.grad!, 1e-12, 1e-9, "gradient");
    }

    /// <summary>All FPN levels in one pass (ATSS, RetinaNet, <c>loss.cls: focal</c>): each segment's value and the
    /// gradient under distinct upstream gradients per segment equal Forward on that run alone, including a run without
    /// positives and an empty run.</summary>
    [Fact]
    public void ForwardPerSegment_EqualsForwardOnEachRun()
    {
        using var scope = NewDisposeScope();
        manual_seed(12);
        const int classes = 5;
        long[] segments = [120, 40, 0, 30, 10];
        long rows = segments.Sum();
        var raw = randn(rows, classes, dtype: float64) * 4;
        var labels = randint(0, classes + 1, rows);
        labels.narrow(0, 120, 40).fill_(classes);   // the second run: background only
        var weight = (rand(rows, dtype: float64) > 0.1).to(float64);
        var upstream = tensor(new[] { 1.0, -2.0, 0.5, 3.0, 0.25 }, dtype: float64);
        var loss = new FocalLoss(2.0, 0.25, lossWeight: 1.3);

        var a = raw.clone().requires_grad_(true);
        var actual = loss.ForwardPerSegment(a, labels, weight, 9.0, segments);
        (actual * upstream).sum().backward();
        var b = raw.clone().requires_grad_(true);
        long start = 0;
        var total = zeros(1, dtype: float64);
        for (int i = 0; i < segments.Length; i++)
        {
            var one = loss.Forward(b.narrow(0, start, segments[i]), labels.narrow(0, start, segments[i]), weight.narrow(0, start, segments[i]), 9.0);
            TensorAssert.Scalar(one.item<double>(), actual[i], 1e-12, 1e-12, $"segment {i}");
            total = total + one * upstream[i];
            start += segments[i];
        }
        total.sum().backward();
        TensorAssert.Close(b.grad!, a.grad!, 1e-12, 1e-12, "gradient");
        // The caller's positives (the loss's one nonzero) give the same values and gradient.
        var c = raw.clone().requires_grad_(true);
        var given = loss.ForwardPerSegment(c, labels, weight, 9.0, segments, LevelRows.Foreground(labels, classes));
        (given * upstream).sum().backward();
        Assert.True(given.equal(actual).all().item<bool>());
        Assert.True(c.grad!.equal(a.grad!).all().item<bool>());
        Assert.Throws<ArgumentException>(() => loss.ForwardPerSegment(raw, labels, weight, 9.0, [rows - 1]));
    }

    /// <summary>The definition, in double: −α_t (1 − p_t)^γ log p_t with p_t = p on the label, 1 − p elsewhere.</summary>
    [Fact]
    public void Elementwise_IsMinusAlphaTTimesOneMinusPtToTheGammaTimesLogPt()
    {
        using var scope = NewDisposeScope();
        manual_seed(3);
        const int rows = 32, classes = 5;
        var logits = randn(rows, classes) * 4;
        var labels = randint(0, classes + 1, rows);
        var actual = new FocalLoss(gamma: 2.0, alpha: 0.25).Elementwise(logits, labels).to(float64).data<double>().ToArray();
        var z = logits.to(float64).data<double>().ToArray();
        var y = labels.data<long>().ToArray();
        for (var i = 0; i < rows; i++)
        for (var c = 0; c < classes; c++)
        {
            var p = 1 / (1 + Math.Exp(-z[i * classes + c]));
            bool target = y[i] == c;
            var pt = target ? p : 1 - p;
            var expected = -(target ? 0.25 : 0.75) * Math.Pow(1 - pt, 2) * Math.Log(pt);
            Assert.True(Math.Abs(actual[i * classes + c] - expected) <= 1e-5 + 1e-4 * Math.Abs(expected),
                $"row {i} class {c}: {actual[i * classes + c]} vs {expected}");
        }
    }
}
