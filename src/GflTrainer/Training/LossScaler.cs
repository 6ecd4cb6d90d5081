using TorchSharp;
using static TorchSharp.torch;

namespace GflTrainer.Training;

/// <summary>Dynamic loss scaling for fp16 (torch.cuda.amp.GradScaler's policy: init 2^16, ×2 after 2000 clean steps,
/// ×0.5 and skip the step on overflow). bf16 has fp32's range and needs none. The finite check is
/// <see cref="GradientCheck"/>'s: one fused reduction over all gradients, read with the step's one host sync. In a run
/// whose steps read nothing back (runtime.loss_reads: log_interval) the state lives on the device instead
/// (<see cref="MoveToDevice"/>), updated there as GradScaler's <c>_amp_update_scale_</c> does.</summary>
public sealed class LossScaler
{
    private readonly double _growthFactor, _backoffFactor;
    private readonly int _growthInterval;
    private double _scale;
    private int _cleanSteps;
    private Tensor? _deviceScale;    // 0-d float64, once on the device
    private Tensor? _deviceClean;    // 0-d int64

    /// <summary>The current scale (read from the device when the state lives there: a sync, for checkpoints).</summary>
    public double Scale => _deviceScale is null ? _scale : _deviceScale.item<double>();

    /// <summary>Consecutive finite steps since the scale last changed.</summary>
    public int CleanSteps => _deviceClean is null ? _cleanSteps : (int)_deviceClean.item<long>();

    /// <summary>Whether the state lives on the device (<see cref="MoveToDevice"/>).</summary>
    public bool OnDevice => _deviceScale is not null;

    public LossScaler(double initScale = 65536.0, double growthFactor = 2.0, double backoffFactor = 0.5, int growthInterval = 2000)
    {
        _scale = initScale; _growthFactor = growthFactor; _backoffFactor = backoffFactor; _growthInterval = growthInterval;
    }

    /// <summary>From now on the scale and the count live on <paramref name="device"/> and are updated there
    /// (<see cref="Update(Tensor, Tensor)"/>); made by fills, so no host-to-device copy waits for the device.</summary>
    public void MoveToDevice(Device device)
    {
        if (_deviceScale is not null) return;
        _deviceScale = full(Array.Empty<long>(), _scale, ScalarType.Float64, device).DetachFromDisposeScope();
        _deviceClean = full(Array.Empty<long>(), _cleanSteps, ScalarType.Int64, device).DetachFromDisposeScope();
    }

    /// <summary>loss × scale. On the device the float64 scale is cast to the loss's type first, which is what libtorch
    /// does with the host number: the same product.</summary>
    public Tensor ScaleLoss(Tensor loss) => _deviceScale is null ? loss * _scale : loss * _deviceScale.to(loss.dtype);

    /// <summary>Divides the gradients by the scale, in place. <see cref="OptimizerStep"/> then checks them
    /// (<see cref="GradientCheck"/>) and calls <see cref="Update(bool)"/>; a false check skips the step.</summary>
    /// <param name="gradients">the gradient tensors themselves (the optimizer's flat buffer).</param>
    public void Unscale(IReadOnlyList<Tensor> gradients)
    {
        using (NewDisposeScope())
        using (no_grad())
        {
            if (_deviceScale is null)
            {
                double inv = 1.0 / _scale;
                foreach (var g in gradients) g.mul_(inv);
            }
            else
                foreach (var g in gradients) g.mul_(_deviceScale.reciprocal().to(g.dtype));   // 1/scale in double, then cast
        }
    }

    /// <summary>The scale's policy after a step whose unscaled gradients were (not) all finite.</summary>
    public void Update(bool finite)
    {
        if (_deviceScale is not null) throw new InvalidOperationException("the loss scale lives on the device: Update(finite, active)");
        if (finite)
        {
            if (++_cleanSteps >= _growthInterval) { _scale *= _growthFactor; _cleanSteps = 0; }
        }
        else
        {
            _scale *= _backoffFactor;
            _cleanSteps = 0;
        }
    }

    /// <summary><see cref="Update(bool)"/> on the device, when the 0-d bool <paramref name="active"/> is true (false: a
    /// step that does not count, e.g. one whose loss was not finite); the same arithmetic in float64.</summary>
    public void Update(Tensor finite, Tensor active)
    {
        if (_deviceScale is null || _deviceClean is null) throw new InvalidOperationException("the loss scale is on the host: Update(finite)");
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var counted = where(finite, _deviceClean + 1, zeros_like(_deviceClean));
        var grow = counted >= _growthInterval;
        var scale = where(finite, where(grow, _deviceScale * _growthFactor, _deviceScale), _deviceScale * _backoffFactor);
        counted = where(grow, zeros_like(counted), counted);
        _deviceScale.copy_(where(active, scale, _deviceScale));
        _deviceClean.copy_(where(active, counted, _deviceClean));
    }

    /// <summary>Restores the state saved in a checkpoint.</summary>
    public void Restore(double scale, int cleanSteps)
    {
        _scale = scale; _cleanSteps = cleanSteps;
        _deviceScale?.fill_(scale);
        _deviceClean?.fill_(cleanSteps);
    }
}
