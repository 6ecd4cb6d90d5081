using TorchSharp;
using static TorchSharp.torch;

namespace GflTrainer.Training;

/// <summary>Dynamic loss scaling for fp16 (torch.cuda.amp.GradScaler's policy: init 2^16, ×2 after 2000 clean steps,
/// ×0.5 and skip the step on overflow). bf16 has fp32's range and needs none. The finite check is
/// <see cref="GradientCheck.AllFiniteValues"/>: one fused reduction over all gradients with a single host sync per step.</summary>
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

    /// <summary>Unscales gradients in place and reports whether all are finite; updates the scale.
    /// Returns false when the optimizer step must be skipped.</summary>
    /// <param name="gradients">the gradient tensors themselves (the optimizer's flat buffer).</param>
    public bool UnscaleAndUpdate(IReadOnlyList<Tensor> gradients)
    {
        Unscale(gradients);
        bool finite = GradientCheck.AllFiniteValues(gradients);
        Update(finite);
        return finite;
    }

    /// <summary>Divides the gradients by the scale, in place (the first half of <see cref="UnscaleAndUpdate"/>).</summary>
    public void Unscale(IReadOnlyList<Tensor> gradients)
    {
        using (NewDisposeScope())
        using (no_grad())
        {
            double inv = 1.0 / Scale;
            foreach (var g in gradients) g.mul_(inv);
        }
    }

    /// <summary>The scale's policy after a step whose unscaled gradients were (not) all finite: the second half of
    /// <see cref="UnscaleAndUpdate"/>.</summary>
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
