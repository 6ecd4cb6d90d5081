using GflTrainer.Training;
using Xunit;

namespace GflTrainer.Tests.Training;

public class LrScheduleTests
{
    private static LrSchedule Gfl1x() => new(0.01, 500, 0.001, LrDecay.Step, new[] { 8, 11 }, 0.1, true, 88000);

    [Theory]
    [InlineData(0, 0, 0.01 * 0.001)]
    [InlineData(250, 0, 0.01 * (0.001 + 0.999 * 0.5))]
    [InlineData(499, 0, 0.01 * (0.001 + 0.999 * 499 / 500.0))]
    [InlineData(500, 0, 0.01)]
    [InlineData(60000, 7, 0.01)]
    [InlineData(60001, 8, 0.001)]
    [InlineData(80000, 10, 0.001)]
    [InlineData(85000, 11, 0.0001)]
    public void Gfl1x_MatchesMmdetectionFormula(long it, int epoch, double expected) =>
        Assert.Equal(expected, Gfl1x().At(it, epoch), 12);

    [Fact]
    public void Cosine_StartsAtBaseAndEndsAtMin()
    {
        var s = new LrSchedule(0.02, 0, 0.001, LrDecay.Cosine, Array.Empty<int>(), 0.1, false, 1000, 0.05);
        Assert.Equal(0.02, s.At(0, 0), 12);
        Assert.Equal(0.02 * 0.05, s.At(1000, 5), 12);
        Assert.Equal(0.02 * 0.05 + 0.02 * 0.95 * 0.5, s.At(500, 2), 12);
    }

    [Fact]
    public void StepByIteration_UsesIterationMilestones()
    {
        var s = new LrSchedule(1.0, 0, 1, LrDecay.Step, new[] { 100, 200 }, 0.5, false, 300);
        Assert.Equal(1.0, s.At(99, 0));
        Assert.Equal(0.5, s.At(100, 0));
        Assert.Equal(0.25, s.At(250, 0));
    }
}
