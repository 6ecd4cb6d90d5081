using GflTrainer.Config;
using GflTrainer.Model;
using GflTrainer.Runtime;
using GflTrainer.Training.Losses;
using TorchSharp;
using static TorchSharp.torch;

namespace GflTrainer.Training;

/// <summary>How one <see cref="TrainStep.Run"/> ended.</summary>
/// <param name="Losses">the step's loss values (averaged over the ranks).</param>
/// <param name="Update">the optimizer step's outcome; null when the loss was not finite, in which case the weights and
/// the loss scale are untouched (and no backward ran, unless the step reads once: <see cref="TrainStep.OneRead"/>).</param>
public sealed record TrainStepResult(LossScalars Losses, OptimizerStepOutcome? Update)
{
    public bool LossFinite => Update is not null;
}

/// <summary>
/// One training step: forward (inside an autocast region when AMP is on), the losses in fp32, one host read of the
/// loss values, then <see cref="OptimizerStep"/> (backward, gradient check, clip, SGD); on a GPU the loss is read with
/// the gradient check in one transfer after backward (<see cref="OneRead"/>), or nothing is read at all
/// (<see cref="RunDeferred"/>, runtime.loss_reads: log_interval). <c>gfl train</c> and
/// <c>gfl bench train-step</c> run this one step, so the benchmark times what training does.
/// </summary>
internal sealed class TrainStep
{
    private readonly GflDetector _model;
    private readonly IDenseHeadLoss _loss;
    private readonly OptimizerStep _update;
    private readonly ScalarType? _ampType;
    private readonly Device _device;
    private readonly ICollective _collective;
    private readonly bool _channelsLast;

    /// <param name="channelsLast">convert each batch to channels_last before the forward; the model's conv weights must be
    /// channels_last too (<see cref="ChannelsLast.Apply"/>), or the convolutions convert them on every call.</param>
    /// <param name="oneRead">see <see cref="OneRead"/>; null: on CUDA only.</param>
    public TrainStep(GflDetector model, IDenseHeadLoss loss, OptimizerStep update, ScalarType? ampType, Device device, ICollective? collective = null,
        bool channelsLast = false, bool? oneRead = null)
    {
        _model = model; _loss = loss; _update = update; _ampType = ampType; _device = device;
        _collective = collective ?? SingleProcessCollective.Instance;
        _channelsLast = channelsLast;
        OneRead = oneRead ?? device.type == DeviceType.CUDA;
    }

    /// <summary>Read the loss and the gradient check's flag in one device-to-host transfer after backward, instead of the
    /// loss before backward and the flag after it. On a GPU every read waits for the queue to drain and leaves the
    /// device idle while the host queues the next kernels, so the step keeps one (issue 21). The price: backward runs
    /// on a non-finite loss before it is seen; the outcome is the same (no update, the loss scale untouched, the run
    /// stops with the loss named), only that backward's time is spent. On the CPU, where a read costs nothing, the
    /// loss is read first and a non-finite one runs no backward.</summary>
    public bool OneRead { get; }

    /// <summary>The step of a configuration: its loss (model section), AMP mode, memory format, loss scaler (fp16) and
    /// gradient clipping (train section) around <paramref name="sgd"/> (for <c>runtime.channels_last</c> the model went
    /// through <see cref="ChannelsLast.Apply"/> before <paramref name="sgd"/> was built).</summary>
    /// <param name="oneRead">see <see cref="OneRead"/>; null: on CUDA only (tests force either way).</param>
    public static TrainStep FromConfig(GflConfig cfg, GflDetector model, Sgd sgd, Device device, ICollective? collective = null,
        Action<IReadOnlyList<(string Name, Tensor Param)>>? afterBackwardForTests = null, bool? oneRead = null)
    {
        var scaler = cfg.Train.Amp == AmpMode.Fp16 ? new LossScaler() : null;
        var update = new OptimizerStep(sgd, scaler, cfg.Train.GradClip, collective, cfg.Train.Dist.OverlapBackward)
            { AfterBackward = afterBackwardForTests };
        return new TrainStep(model, DenseHeadLoss.FromConfig(cfg.Model, collective), update, AmpType(cfg.Train.Amp), device, collective,
            cfg.Runtime.ChannelsLast, oneRead) { Scaler = scaler };
    }

    public static ScalarType? AmpType(AmpMode amp) =>
        amp switch { AmpMode.Bf16 => ScalarType.BFloat16, AmpMode.Fp16 => ScalarType.Float16, _ => null };

    /// <summary>The head's loss; its target builder also builds targets ahead in the loader (<see cref="HostTargets"/>).</summary>
    public IDenseHeadLoss Loss => _loss;

    /// <summary>The gradients reduce over ranks stage by stage during backward (<see cref="OptimizerStep.ReducesInBackward"/>).</summary>
    public bool ReducesInBackward => _update.ReducesInBackward;

    /// <summary>The fp16 loss scaler (its state goes into checkpoints), or null.</summary>
    public LossScaler? Scaler { get; private init; }

    /// <param name="images">(N, 3, H, W) normalised, padded batch on the step's device.</param>
    /// <param name="gtBoxes">per image (G_i, 4) xyxy pixels of the padded input.</param>
    /// <param name="gtLabels">per image (G_i,) int64 class indices.</param>
    /// <param name="padShapes">per image its padded (H, W).</param>
    /// <param name="targets">the batch's targets built ahead by the loader (<see cref="HostTargets"/>), or null: the loss
    /// builds them inside the step.</param>
    public TrainStepResult Run(Tensor images, IReadOnlyList<Tensor> gtBoxes, IReadOnlyList<Tensor> gtLabels,
        IReadOnlyList<(int H, int W)> padShapes, Targets.GflTargets? targets = null)
    {
        // Data parallel: the graph is cut so each stage's gradients reduce while backward goes on (OptimizerStep.Backward).
        using var stages = _update.ReducesInBackward ? new BackwardStages() : null;
        var losses = ForwardAndLosses(images, gtBoxes, gtLabels, padShapes, targets, stages);
        LossScalars scalars;
        if (!OneRead)
        {
            using (StepProfiler.Phase("loss_read"))
                scalars = Average(losses.ToScalars());   // the one host sync before backward
            if (!double.IsFinite(scalars.Total)) return new TrainStepResult(scalars, null);
            return new TrainStepResult(scalars, _update.Run(losses.Total, stages));   // backward, gradient check, clip, SGD
        }
        _update.Backward(losses.Total, stages);
        Tensor flag;
        using (StepProfiler.Phase(_update.CheckPhase))
            flag = _update.GradientFlag();
        bool sumsFinite;
        using (StepProfiler.Phase("loss_read"))
            (scalars, sumsFinite) = LossScalars.Read(losses.Terms, losses.Total, flag);   // the step's one host sync
        scalars = Average(scalars);
        // A non-finite loss: nothing more (no scaler update, no SGD), as when it is read before backward.
        if (!double.IsFinite(scalars.Total)) return new TrainStepResult(scalars, null);
        return new TrainStepResult(scalars, _update.Complete(sumsFinite));   // clip, SGD
    }

    /// <summary><see cref="Run"/> without reading anything back (runtime.loss_reads: log_interval): the losses averaged over
    /// the ranks on the device, and whether to apply the update decided there too (<see cref="OptimizerStep.CompleteOnDevice"/>),
    /// so the host queues the next step while the device still runs this one. The caller reads the returned row later,
    /// many steps at once (<see cref="DeferredLosses"/>).</summary>
    /// <returns>A <see cref="LossScalars.Row"/> outside every dispose scope: the loss terms (named by
    /// <see cref="LossTermNames"/>), the total, then 1/0 for: every gradient was finite, the update was applied, the run
    /// is halted (<see cref="OptimizerStep.CompleteOnDevice"/>).</returns>
    public Tensor RunDeferred(Tensor images, IReadOnlyList<Tensor> gtBoxes, IReadOnlyList<Tensor> gtLabels,
        IReadOnlyList<(int H, int W)> padShapes, Targets.GflTargets? targets = null)
    {
        Scaler?.MoveToDevice(_device);   // its decisions are taken on the device too
        using var stages = _update.ReducesInBackward ? new BackwardStages() : null;
        var losses = ForwardAndLosses(images, gtBoxes, gtLabels, padShapes, targets, stages);
        LossTermNames ??= losses.Terms.Select(t => t.Name).ToList();
        _update.Backward(losses.Total, stages);
        var values = LossScalars.Row(losses.Terms, losses.Total);
        if (_collective.WorldSize > 1)
            using (StepProfiler.Phase("all_reduce"))
                _collective.AllReduceMean([values]);   // as Average: float64 means of the ranks' float32 values
        var (gradientsFinite, applied, halted) = _update.CompleteOnDevice(values[values.shape[0] - 1]);
        return cat([values, .. new[] { gradientsFinite, applied, halted }.Select(t => t.to(float64).reshape(1))], 0).DetachFromDisposeScope();
    }

    /// <summary>The names of the loss terms in <see cref="RunDeferred"/>'s rows (known after its first call).</summary>
    public IReadOnlyList<string>? LossTermNames { get; private set; }

    /// <summary>After a step of <see cref="RunDeferred"/> was refused for a non-finite gradient: the first parameter at fault.</summary>
    public NonFiniteGradient? FirstRefusedGradient() => _update.FirstRefusedGradient();

    // Forward (in autocast when AMP is on) and the losses in fp32.
    IHeadLosses ForwardAndLosses(Tensor images, IReadOnlyList<Tensor> gtBoxes, IReadOnlyList<Tensor> gtLabels,
        IReadOnlyList<(int H, int W)> padShapes, Targets.GflTargets? targets, BackwardStages? stages)
    {
        HeadOutputs outputs;
        using (StepProfiler.Phase("forward"))
        {
            // The copy belongs to the caller's dispose scope, as every tensor of the step.
            if (_channelsLast && !ChannelsLast.Is(images)) images = ChannelsLast.Of(images);
            using (Autocast.Enter(_ampType, _device))
                outputs = _model.Forward(images, stages);
            if (_ampType is not null)   // losses in fp32, as mmdetection's AmpOptimWrapper leaves them outside autocast's casts
                outputs = new HeadOutputs(outputs.ClassScores.Select(x => x.to(ScalarType.Float32)).ToList(),
                    outputs.BoxPredictions.Select(x => x.to(ScalarType.Float32)).ToList())
                {
                    Centerness = outputs.Centerness?.Select(x => x.to(ScalarType.Float32)).ToList(),
                };
        }
        // Crowd regions are not passed: mmdetection's ATSS has ignore_iof_thr -1, so anchors on them stay negatives.
        using (StepProfiler.Phase("loss"))
            return _loss.Compute(outputs, gtBoxes, gtLabels, padShapes, targets);
    }

    private LossScalars Average(LossScalars s)
    {
        if (_collective.WorldSize == 1) return s;
        var v = _collective.AllReduceMean(s.Terms.Select(t => t.Value).Append(s.Total).ToArray());
        return new LossScalars(v[^1], s.Terms.Select((t, i) => t with { Value = v[i] }).ToList());
    }
}
