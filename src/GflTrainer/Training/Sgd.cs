using TorchSharp;
using static TorchSharp.torch;

namespace GflTrainer.Training;

/// <summary>
/// SGD with momentum and weight decay, the exact update of torch.optim.SGD (dampening 0) that mmdetection uses:
/// d = g + wd·p; buf = d on the first step, else buf = m·buf + d; p −= lr·buf, or with Nesterov p −= lr·(d + m·buf).
/// Our own rather than TorchSharp's so that momentum buffers are keyed by parameter name: they go into
/// checkpoints as plain tensors and a resumed run continues bit-identically.
/// </summary>
public sealed class Sgd : IDisposable
{
    private readonly IReadOnlyList<(string Name, Tensor Param)> _params;
    private readonly Dictionary<string, Tensor> _momentum = new();

    public double LearningRate { get; set; }
    public double Momentum { get; }
    public double WeightDecay { get; }
    public bool Nesterov { get; }

    /// <param name="parameters">trainable parameters with their state-dict names (frozen ones excluded).</param>
    public Sgd(IEnumerable<(string Name, Tensor Param)> parameters, double lr, double momentum, double weightDecay, bool nesterov = false)
    {
        if (nesterov && momentum == 0) throw new ArgumentException("Nesterov momentum requires a momentum > 0 (as torch.optim.SGD)", nameof(nesterov));
        _params = parameters.ToList();
        LearningRate = lr; Momentum = momentum; WeightDecay = weightDecay; Nesterov = nesterov;
    }

    public IReadOnlyList<(string Name, Tensor Param)> Parameters => _params;

    /// <summary>Drops the gradients (PyTorch 2.x's <c>zero_grad(set_to_none=True)</c>, what the reference does): the
    /// next backward then stores fresh gradient tensors instead of clearing buffers and adding into them, two passes
    /// over every parameter fewer per step. Parameters that get no gradient are skipped by <see cref="Step"/>.</summary>
    public void ZeroGrad()
    {
        foreach (var (_, p) in _params) p.grad = null;
    }

    public void Step()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        foreach (var (name, p) in _params)
        {
            var g = p.grad;
            if (g is null) continue;
            // In place on the gradient, which is dropped at the next ZeroGrad anyway: no parameter-sized allocation
            // (and its page faults) per step.
            var d = WeightDecay != 0 ? g.add_(p, alpha: WeightDecay) : g;
            if (Momentum != 0)
            {
                if (_momentum.TryGetValue(name, out var buf))
                    buf.mul_(Momentum).add_(d);
                else
                {
                    buf = d.clone().DetachFromDisposeScope();
                    _momentum[name] = buf;
                }
                // torch.optim.SGD: nesterov uses d + m·buf (d is the gradient tensor itself, already scratch).
                d = Nesterov ? d.add_(buf, alpha: Momentum) : buf;
            }
            p.add_(d, alpha: -LearningRate);
        }
    }

    /// <summary>Momentum buffers by parameter name (live tensors owned by the optimizer).</summary>
    public IReadOnlyDictionary<string, Tensor> MomentumBuffers => _momentum;

    /// <summary>Restores momentum buffers (copied onto each parameter's device); unknown names are an error.</summary>
    /// <param name="source">the checkpoint the buffers come from, named in errors.</param>
    public void LoadMomentum(IReadOnlyDictionary<string, Tensor> buffers, string source = "optimizer state")
    {
        var byName = _params.ToDictionary(p => p.Name, p => p.Param);
        foreach (var (name, t) in buffers)
        {
            if (!byName.TryGetValue(name, out var p))
                throw new CheckpointException(source, $"optimizer state has a buffer for unknown parameter '{name}'", name);
            if (!t.shape.SequenceEqual(p.shape))
                throw new CheckpointException(source, $"optimizer buffer '{name}' has shape [{string.Join(",", t.shape)}], parameter has [{string.Join(",", p.shape)}]", name);
            if (_momentum.Remove(name, out var old)) old.Dispose();
            _momentum[name] = t.to(p.dtype, p.device, copy: true).DetachFromDisposeScope();
        }
    }

    public void Dispose()
    {
        foreach (var t in _momentum.Values) t.Dispose();
        _momentum.Clear();
    }
}
