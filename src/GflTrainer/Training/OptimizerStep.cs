using GflTrainer.Config;
using GflTrainer.Model;
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
    private readonly bool _overlap;
    private readonly Dictionary<Tensor, int> _index;
    private Tensor? _halted;         // deferred steps: 0-d bool, a step was not applied; every later one is skipped too
    private Tensor? _firstBad;       // deferred steps: the gradients of the first step not applied, to name the parameter

    /// <param name="sgd">the optimizer; its parameter list (names, named_parameters order) is the one checked.</param>
    /// <param name="scaler">fp16 loss scaler, or null (fp32, bf16).</param>
    /// <param name="clip">train.grad_clip, or null for none.</param>
    /// <param name="collective">averages the gradients over the ranks (DDP); null: one process.</param>
    /// <param name="overlapBackward">train.dist.overlap_backward: reduce each stage's gradients during backward when the
    /// forward cut the graph (<see cref="ReducesInBackward"/>).</param>
    public OptimizerStep(Sgd sgd, LossScaler? scaler, GradClipConfig? clip, ICollective? collective = null, bool overlapBackward = true)
    {
        _sgd = sgd; _scaler = scaler; _clip = clip; _collective = collective ?? SingleProcessCollective.Instance;
        _overlap = overlapBackward;
        _params = sgd.Parameters.Select(p => p.Param).ToList();
        _index = new Dictionary<Tensor, int>(ReferenceEqualityComparer.Instance);
        for (int i = 0; i < _params.Count; i++) _index[_params[i]] = i;
        _clipParams = _params.OfType<TorchSharp.Modules.Parameter>().ToList();
        if (clip is not null && _clipParams.Count != _params.Count)
            throw new InvalidOperationException("gradient clipping needs the optimizer's tensors to be module Parameters");
    }

    /// <summary>Test seam: runs right after backward and the all-reduce, before the check, with the optimizer's named
    /// parameters (e.g. to poke a NaN into one gradient). Null in normal runs.</summary>
    internal Action<IReadOnlyList<(string Name, Tensor Param)>>? AfterBackward { get; set; }

    /// <summary>True when the gradients are reduced over ranks stage by stage during backward: the step's forward cuts
    /// the graph into <see cref="BackwardStages"/> and passes them to <see cref="Backward"/>. Only with more than one
    /// rank (nothing to overlap otherwise) and train.dist.overlap_backward.</summary>
    public bool ReducesInBackward => _overlap && _collective.WorldSize > 1;

    /// <summary>The whole update after the loss: backward, the gradient check (one host read), clip, SGD.</summary>
    /// <param name="stages">the graph's cuts when <see cref="ReducesInBackward"/>, else null.</param>
    public OptimizerStepOutcome Run(Tensor loss, BackwardStages? stages = null)
    {
        Backward(loss, stages);
        bool sumsFinite;
        using (StepProfiler.Phase(CheckPhase))
            sumsFinite = GradientFlag().item<bool>();
        return Complete(sumsFinite);
    }

    /// <summary>The profiler phase of <see cref="GradientFlag"/>: the gradient check, or the fp16 unscale and check.</summary>
    public string CheckPhase => _scaler is null ? "grad_check" : "unscale";

    /// <summary>Clear the gradients, backward, average them over the ranks: <see cref="Run"/> up to the check. With
    /// <paramref name="stages"/> each stage's gradients start reducing as soon as backward has passed it (the neck and
    /// head first, then layer4, layer3, ...), and the "all_reduce" phase is only the wait for what is left.</summary>
    public void Backward(Tensor loss, BackwardStages? stages = null)
    {
        if (stages is not null && !ReducesInBackward)
            throw new InvalidOperationException("backward stages are only cut when the gradients reduce during backward");
        var spans = new List<Tensor>();
        using (StepProfiler.Phase("backward"))
        {
            _sgd.ZeroGrad();
            var root = _scaler is null ? loss : _scaler.ScaleLoss(loss);
            if (stages is null)
                root.backward();
            else
            {
                var plan = ReductionPlan(stages);
                stages.Backward(root, stage =>
                {
                    foreach (var (start, end) in plan[stage])
                    {
                        var span = _sgd.GradientSpan(start, end);
                        spans.Add(span);
                        _collective.StartAllReduceMean(span);
                    }
                });
            }
        }
        // Every rank checks, clips and steps on the same averaged gradients, so all take the same decision below.
        if (_collective.WorldSize > 1)
            using (StepProfiler.Phase("all_reduce"))
            {
                if (stages is null) _collective.AllReduceMean([_sgd.Gradients]);
                else _collective.WaitAllReduces();
            }
        foreach (var span in spans) span.Dispose();
        AfterBackward?.Invoke(_sgd.Parameters);
    }

    /// <summary>The end of a step that reads nothing back (runtime.loss_reads: log_interval), after <see cref="Backward"/>:
    /// <see cref="Complete"/>'s decisions taken on the device. The update is applied when the loss and every gradient are
    /// finite and the run has not been halted; otherwise it is skipped (<see cref="Sgd.Step(Tensor)"/>). What halts the
    /// run is what stops the reading step: a non-finite loss, and in fp32/bf16 a non-finite gradient. A halt is sticky,
    /// every later update is skipped too, so when the host reads the steps back (<see cref="DeferredLosses"/>) the
    /// weights are those before the first halted step, where the reading run stops. In fp16 a gradient overflow only
    /// skips the step and backs the scale off, on the device (<see cref="LossScaler.Update(Tensor, Tensor)"/>). Clipping
    /// runs on the flat buffer (the same norm as clip_grad_norm_, summed in another order, so equal to float rounding,
    /// and without its host read of the norm).</summary>
    /// <param name="lossTotal">0-d: the step's total loss (averaged over the ranks).</param>
    /// <returns>0-d bool tensors: every gradient was finite; the update was applied; the run is halted (this step or an
    /// earlier one).</returns>
    public (Tensor GradientsFinite, Tensor Applied, Tensor Halted) CompleteOnDevice(Tensor lossTotal)
    {
        using var noGrad = no_grad();
        var grads = _sgd.Gradients;
        Tensor gradsFinite, applied;
        using (StepProfiler.Phase(CheckPhase))
        {
            _scaler?.Unscale([grads]);
            // Exact (a value-by-value check, not GradientCheck's sums, whose overflow case needs a second look).
            gradsFinite = grads.isfinite().all();
            _halted ??= tensor(false, device: grads.device).DetachFromDisposeScope();
            using var counts = lossTotal.isfinite().logical_and_(_halted.logical_not());   // a step the run still takes
            applied = gradsFinite.logical_and(counts);
            using var halts = _scaler is null ? applied.logical_not() : counts.logical_not().logical_and_(_halted.logical_not());
            if (_scaler is null)
            {
                // Keep the gradients of the step that halts the run, to name the parameter when the host reads it.
                using var first = halts.logical_and(_halted.logical_not());
                _firstBad ??= zeros_like(grads).DetachFromDisposeScope();
                _firstBad.copy_(where(first, grads, _firstBad));
            }
            _scaler?.Update(gradsFinite, counts);
            _halted.logical_or_(halts);
        }
        if (_clip is not null)
            using (StepProfiler.Phase("clip"))
            {
                // torch.nn.utils.clip_grad_norm_: coef = max_norm / (total_norm + 1e-6), clamped to 1 (a true division:
                // TorchSharp's number / tensor multiplies by the reciprocal).
                var norm = double.IsPositiveInfinity(_clip.NormType) ? grads.abs().max() : grads.norm((float)_clip.NormType);
                var maxNorm = full(Array.Empty<long>(), _clip.MaxNorm, norm.dtype, norm.device);
                grads.mul_(maxNorm.div(norm + 1e-6).clamp_max(1.0));
            }
        using (StepProfiler.Phase("update"))
            _sgd.Step(applied);
        return (gradsFinite, applied, _halted.clone());
    }

    /// <summary>After <see cref="CompleteOnDevice"/> refused a step for its gradients (read back later): the first
    /// parameter whose gradient was not finite in that step, as <see cref="Complete"/> names it at once.</summary>
    public NonFiniteGradient? FirstRefusedGradient() =>
        _firstBad is null ? null : GradientCheck.FirstNonFinite(_sgd.GradientsIn(_firstBad).Select(g => (g.Name, (Tensor?)g.Gradient)));

    /// <summary>Per stage of <paramref name="stages"/> (backward order), the runs of consecutive optimizer parameters whose
    /// gradients it completes, last run first (DDP reduces its buckets in reverse parameter order): the parameters of
    /// the stage's owner modules, and for stage 0 every parameter no stage owns. Every rank derives the same plan from
    /// the same model, so all start the same reductions in the same order.</summary>
    internal List<(int Start, int End)>[] ReductionPlan(BackwardStages stages)
    {
        var stageOf = new int[_params.Count];
        for (int stage = 1; stage < stages.Count; stage++)
            foreach (var module in stages.OwnersOf(stage))
                foreach (var p in module.parameters())
                {
                    if (!p.requires_grad) continue;   // frozen: not optimised, no gradient
                    if (!_index.TryGetValue(p, out int i))
                        throw new InvalidOperationException($"a trainable parameter of {module.GetName()} is not among the optimizer's");
                    stageOf[i] = stage;
                }
        var plan = Enumerable.Range(0, stages.Count).Select(_ => new List<(int, int)>()).ToArray();
        for (int end = _params.Count; end > 0;)
        {
            int start = end - 1;
            while (start > 0 && stageOf[start - 1] == stageOf[end - 1]) start--;
            plan[stageOf[end - 1]].Add((start, end));
            end = start;
        }
        return plan;
    }

    /// <summary>After <see cref="Backward"/>: unscale the gradients (fp16), then the gradient check's fast flag
    /// (<see cref="GradientCheck.SumsFinite"/>), a 0-d bool left on the device for the caller to read (alone, or with the
    /// loss in one transfer) and pass to <see cref="Complete"/>.</summary>
    public Tensor GradientFlag()
    {
        _scaler?.Unscale([_sgd.Gradients]);
        return GradientCheck.SumsFinite([_sgd.Gradients]);
    }

    /// <summary>The rest of <see cref="Run"/>, given the flag read: the check's slow confirmation when the flag is false,
    /// the loss scaler's update (fp16: non-finite gradients are the expected overflow; the scaler backs off and the step
    /// is skipped, as torch.cuda.amp.GradScaler does), clip and SGD.</summary>
    public OptimizerStepOutcome Complete(bool sumsFinite)
    {
        bool finite = sumsFinite;
        if (!finite)
            using (StepProfiler.Phase(CheckPhase))
                finite = GradientCheck.Confirm([_sgd.Gradients]);
        if (_scaler is not null)
        {
            _scaler.Update(finite);
            if (!finite) return new OptimizerStepOutcome(false, null);
        }
        else if (!finite)
        {
            // The cheap check failed: only now spend a pass per parameter to say which one.
            var bad = GradientCheck.FindFirstNonFinite(_sgd.Parameters)
                ?? throw new InvalidOperationException("GradientCheck.AllFiniteValues and FindFirstNonFinite disagree");
            return new OptimizerStepOutcome(false, bad);
        }
        if (_clip is not null)
            using (StepProfiler.Phase("clip"))
                nn.utils.clip_grad_norm_(_clipParams, _clip.MaxNorm, _clip.NormType);
        using (StepProfiler.Phase("update"))
            _sgd.Step();
        return new OptimizerStepOutcome(true, null);
    }
}
