using TorchSharp;
using static TorchSharp.torch;

namespace GflTrainer.Training;

/// <summary>Dynamic loss scaling for fp16 (torch.cuda.amp.GradScaler's policy: init 2^16, ×2 after 2000 clean steps,
/// ×0.5 and skip the step on overflow). bf16 has fp32's range and needs none. The finite check is
/// <see cref="GradientCheck"/>'s: one fused reduction over all gradients, read with the step's one host sync.</summary>
public sealed class LossScaler
{
    private readonly double _growthFactor, _backoffFactor;
    private readonly int _growthInterval;

    public double Scale { get; private set; }
    public int CleanSteps { get; private set; }

    public LossScaler(double initScale = 65536.0, double growthFactor = 2.0, double backoffFactor = 0.5, int growthInterval = 2000)
    {
        Scale = initScale; _growthFactor = growthFactor; _backoffFactor = backoffFactor; _growthInterval = growthInterval;
    }

    public Tensor ScaleLoss(Tensor loss) => loss * Scale;

    /// <summary>Divides the gradients by the scale, in place. <see cref="OptimizerStep"/> then checks them
    /// (<see cref="GradientCheck"/>) and calls <see cref="Update"/>; a false check skips the step.</summary>
    /// <param name="gradients">the gradient tensors themselves (the optimizer's flat buffer).</param>
    public void Unscale(IReadOnlyList<Tensor> gradients)
    {
        using (NewDisposeScope())
        using (no_grad())
        {
            double inv = 1.0 / Scale;
            foreach (var g in gradients) g.mul_(inv);
        }
    }

    /// <summary>The scale's policy after a step whose unscaled gradients were (not) all finite.</summary>
    public void Update(bool finite)
    {
        if (finite)
        {
            if (++CleanSteps >= _growthInterval) { Scale *= _growthFactor; CleanSteps = 0; }
        }
        else
        {
            Scale *= _backoffFactor;
            CleanSteps = 0;
        }
    }

    /// <summary>Restores the state saved in a checkpoint.</summary>
    public void Restore(double scale, int cleanSteps) { Scale = scale; CleanSteps = cleanSteps; }
}
