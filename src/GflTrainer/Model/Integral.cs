using static TorchSharp.torch;

namespace GflTrainer.Model;

/// <summary>
/// GFL's Integral (Li et al. 2020, eq. 5): each side's distance is the expectation of a discrete distribution over
/// the bins 0..reg_max: softmax over the reg_max + 1 logits, dotted with [0, 1, ..., reg_max].
/// </summary>
internal static class Integral
{
    /// <param name="binLogits">(n, 4(R+1)) side-major [l0..lR, t0..tR, r0..rR, b0..bR].</param>
    /// <param name="regMax">R (16 for GFL).</param>
    /// <returns>(n, 4) distances l, t, r, b in bins (stride units).</returns>
    public static Tensor Forward(Tensor binLogits, int regMax)
    {
        using var scope = NewDisposeScope();
        var probabilities = binLogits.reshape(-1, regMax + 1).softmax(1);
        var project = linspace(0, regMax, regMax + 1, dtype: probabilities.dtype, device: probabilities.device);
        return probabilities.matmul(project).reshape(-1, 4).MoveToOuterDisposeScope();
    }
}
