using GflTrainer.Config;
using GflTrainer.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace GflTrainer.Training;

/// <summary>How <see cref="OptimizerStep.Run"/> ended.</summary>
/// <param name="Applied">the SGD update was made.</param>
/// <param name="NonFinite">set when a gradient was NaN/Inf in fp32/bf16: no update was made and the caller must stop
/// the run (<see cref="NonFiniteGradientException"/>). Null otherwise, also for an fp16 overflow (Applied false):
/// that one is expected, the loss scaler backs off and the step is skipped, as torch.cuda.amp.GradScaler does.</param>
public readonly record struct OptimizerStepOutcome(bool Applied, NonFiniteGradient? NonFinite);

/// <summary>
/// Everything of a training step after the loss: clear the gradients, backward, the finite check on the gradients,
/// optional gradient-norm clipping and the SGD update. <c>gfl train</c> (<see cref="Trainer"/>) and
/// <c>gfl bench train-step</c> both run this, so the benchmark times the trainer's step.
/// </summary>
/// <remarks>
/// The check runs before clipping: libtorch's clip_grad_norm_ multiplies every gradient by max_norm / total_norm,
/// which turns all of them into NaN when one is, and the report could no longer name the parameter at fault. Its
/// total norm therefore is not reused as the check (one more pass over the gradients when clipping, measured in
/// docs/STATUS.md "Gradient check").
/// </remarks>
internal sealed class OptimizerStep
{
    private readonly Sgd _sgd;
    private readonly LossScaler? _scaler;
    private readonly GradClipConfig? _clip;
    private readonly List<Tensor> _params;
    private readonly List<TorchSharp.Modules.Parameter> _clipParams;
    private readonly ICollective _collective;

    /// <param name="sgd">the optimizer; its parameter list (names, named_parameters order) is the one checked.</param>
    /// <param name="scaler">fp16 loss scaler, or null (fp32, bf16).</param>
    /// <param name="clip">train.grad_clip, or null for none.</param>
    /// <param name="collective">averages the gradients over the ranks after backward (DDP); null: one process.</param>
    public OptimizerStep(Sgd sgd, LossScaler? scaler, GradClipConfig? clip, ICollective? collective = null)
    {
        _sgd = sgd; _scaler = scaler; _clip = clip; _collective = collective ?? SingleProcessCollective.Instance;
        _params = sgd.Parameters.Select(p => p.Param).ToList();
        _clipParams = _params.OfType<TorchSharp.Modules.Parameter>().ToList();
        if (clip is not null && _clipParams.Count != _params.Count)
            throw new InvalidOperationException("gradient clipping needs the optimizer's tensors to be module Parameters");
    }

    /// <summary>Test seam: runs right after backward, before the check, with the optimizer's named parameters (e.g.
    /// to poke a NaN into one gradient). Null in normal runs.</summary>
    internal Action<IReadOnlyList<(string Name, Tensor Param)>>? AfterBackward { get; set; }

    public OptimizerStepOutcome Run(Tensor loss)
    {
        using (StepProfiler.Phase("backward"))
        {
            _sgd.ZeroGrad();
            (_scaler is null ? loss : _scaler.ScaleLoss(loss)).backward();
        }
        AfterBackward?.Invoke(_sgd.Parameters);
        // Every rank checks, clips and steps on the same averaged gradients, so all take the same decision below.
        if (_collective.WorldSize > 1)
            using (StepProfiler.Phase("all_reduce"))
                _collective.AllReduceMean([_sgd.Gradients]);
        using (StepProfiler.Phase(_scaler is null ? "grad_check" : "unscale"))
        {
            if (_scaler is not null)
            {
                // fp16: non-finite gradients are the expected overflow; the scaler backs off and the step is skipped.
                if (!_scaler.UnscaleAndUpdate([_sgd.Gradients])) return new OptimizerStepOutcome(false, null);
            }
            else if (!GradientCheck.AllFiniteValues([_sgd.Gradients]))
            {
                // The cheap check failed: only now spend a pass per parameter to say which one.
                var bad = GradientCheck.FindFirstNonFinite(_sgd.Parameters)
                    ?? throw new InvalidOperationException("GradientCheck.AllFiniteValues and FindFirstNonFinite disagree");
                return new OptimizerStepOutcome(false, bad);
            }
        }
        if (_clip is not null)
            using (StepProfiler.Phase("clip"))
                nn.utils.clip_grad_norm_(_clipParams, _clip.MaxNorm, _clip.NormType);
        using (StepProfiler.Phase("update"))
            _sgd.Step();
        return new OptimizerStepOutcome(true, null);
    }
}
