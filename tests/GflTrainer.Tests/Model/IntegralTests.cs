using GflTrainer.Model;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Model;

public class IntegralTests
{
    [Fact]
    public void Forward_IsTheExpectationOverBins_PerSideInSideMajorLayout()
    {
        using var scope = NewDisposeScope();
        // One anchor: side l puts all mass on bin 3, t splits 2 and 5 evenly, r uniform (mean 8), b on bin 16.
        var logits = full(4, 17, -1e4f);
        logits[0, 3] = tensor(0f);
        logits[1, 2] = tensor(0f);
        logits[1, 5] = tensor(0f);
        logits[2] = zeros(17);
        logits[3, 16] = tensor(0f);
        var d = Integral.Forward(logits.reshape(1, 68), 16).data<float>().ToArray();
        Assert.Equal(new[] { 3f, 3.5f, 8f, 16f }, d.Select(v => MathF.Round(v, 4)).ToArray());
    }
}
