using TorchSharp;
using static TorchSharp.torch;

namespace GflTrainer.Training;

/// <summary>
/// SGD with momentum and weight decay, the exact update of torch.optim.SGD (dampening 0) that mmdetection uses:
/// d = g + wd·p; buf = d on the first step, else buf = m·buf + d; p −= lr·buf, or with Nesterov p −= lr·(d + m·buf).
/// Our own rather than TorchSharp's so that momentum buffers are keyed by parameter name: they go into
/// checkpoints as plain tensors and a resumed run continues bit-identically. The parameters, gradients and momentum
/// live in flat buffers (<see cref="FlatParameters"/>), so one update is three or four kernels for the whole model.
/// </summary>
public sealed class Sgd : IDisposable
{
    private readonly IReadOnlyList<(string Name, Tensor Param)> _params;
    private readonly FlatParameters _flat;
    private Tensor? _momentum;   // laid out as _flat.Values; null until the first step or a restore
    private Tensor? _started;    // masked steps (Step(apply)): 0-d bool, whether _momentum holds a first step's buf yet

    public double LearningRate { get; set; }
    public double Momentum { get; }
    public double WeightDecay { get; }
    public bool Nesterov { get; }

    /// <param name="parameters">trainable parameters with their state-dict names (frozen ones excluded), on their final
    /// device: they are moved into one buffer here (<see cref="FlatParameters"/>).</param>
    public Sgd(IEnumerable<(string Name, Tensor Param)> parameters, double lr, double momentum, double weightDecay, bool nesterov = false)
    {
        if (nesterov && momentum == 0) throw new ArgumentException("Nesterov momentum requires a momentum > 0 (as torch.optim.SGD)", nameof(nesterov));
        _params = parameters.ToList();
        _flat = new FlatParameters(_params.Select(p => p.Param).ToList());
        LearningRate = lr; Momentum = momentum; WeightDecay = weightDecay; Nesterov = nesterov;
    }

    public IReadOnlyList<(string Name, Tensor Param)> Parameters => _params;

    /// <summary>Every parameter's gradient, concatenated flat (each <c>.grad</c> is a view of it): checks, unscaling and
    /// the all-reduce work on this one tensor.</summary>
    public Tensor Gradients => _flat.Gradients;

    /// <summary>Each parameter's name and its view of <paramref name="flat"/>, a buffer laid out as <see cref="Gradients"/>.</summary>
    internal IEnumerable<(string Name, Tensor Gradient)> GradientsIn(Tensor flat) =>
        _params.Select((p, i) => (p.Name, _flat.Slice(flat, i)));

    /// <summary>The contiguous part of <see cref="Gradients"/> that holds parameters <paramref name="start"/> up to
    /// <paramref name="end"/> (exclusive) of <see cref="Parameters"/>, with their alignment gaps: a bucket to all-reduce.</summary>
    public Tensor GradientSpan(int start, int end) => _flat.GradientSpan(start, end);

    /// <summary>Clears the flat gradient buffer for the next backward, which accumulates into it in place. (The
    /// per-tensor optimizer dropped the gradients instead, PyTorch 2.x's set_to_none, saving a fill and an add per
    /// parameter; on the flat buffer the fill is one kernel and the CPU step measured no slower: docs/performance.md.)</summary>
    public void ZeroGrad() => _flat.ZeroGradients();

    /// <summary>One update of all parameters at once, element-wise on the flat buffers (torch.optim.SGD's formulas).</summary>
    public void Step()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        // In place on the gradients, which the next ZeroGrad clears anyway: no parameter-sized allocation per step.
        var d = WeightDecay != 0 ? _flat.Gradients.add_(_flat.Values, alpha: WeightDecay) : _flat.Gradients;
        if (Momentum != 0)
        {
            if (_momentum is null)
                _momentum = d.clone().DetachFromDisposeScope();   // torch.optim.SGD: buf = d on the first step
            else
                _momentum.mul_(Momentum).add_(d);
            // torch.optim.SGD: nesterov uses d + m·buf (d is the gradient buffer itself, already scratch).
            d = Nesterov ? d.add_(_momentum, alpha: Momentum) : _momentum;
        }
        _flat.Values.add_(d, alpha: -LearningRate);
    }

    /// <summary><see cref="Step()"/> when the 0-d bool <paramref name="apply"/> is true, else nothing, decided on the
    /// device: a step that reads nothing back (runtime.loss_reads: log_interval) skips a non-finite step's update this
    /// way. The same kernels as <see cref="Step()"/>, out of place, then selected: the applied values are bit-identical
    /// (tested), and a NaN in the skipped branch cannot leak through the selection.</summary>
    public void Step(Tensor apply)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var values = _flat.Values;
        var d = WeightDecay != 0 ? _flat.Gradients.add(values, alpha: WeightDecay) : _flat.Gradients;
        if (Momentum != 0)
        {
            if (_momentum is null)
            {
                _momentum = zeros_like(values).DetachFromDisposeScope();
                _started = tensor(false, device: values.device).DetachFromDisposeScope();
            }
            // torch.optim.SGD: buf = d on the first applied step, else m·buf + d.
            var buf = _started is null ? _momentum.mul(Momentum).add(d) : where(_started, _momentum.mul(Momentum).add(d), d);
            _momentum.copy_(where(apply, buf, _momentum));
            _started?.logical_or_(apply);
            d = Nesterov ? d.add(_momentum, alpha: Momentum) : _momentum;
        }
        values.copy_(where(apply, values.add(d, alpha: -LearningRate), values));
    }

    /// <summary>The momentum buffer of every parameter by name (views of the one buffer; empty before the first step),
    /// as checkpoints store them.</summary>
    public IReadOnlyDictionary<string, Tensor> MomentumBuffers => _momentum is null || _started is not null && !_started.item<bool>()
        ? new Dictionary<string, Tensor>()
        : _params.Select((p, i) => (p.Name, i)).ToDictionary(x => x.Name, x => _flat.Slice(_momentum, x.i));

    /// <summary>Restores the buffers of a checkpoint: none (saved before the first step) or one for every parameter.</summary>
    public void LoadMomentum(IReadOnlyDictionary<string, Tensor> buffers, string source = "optimizer state")
    {
        var index = _params.Select((p, i) => (p.Name, i)).ToDictionary(x => x.Name, x => x.i);
        foreach (var (name, t) in buffers)
        {
            if (!index.TryGetValue(name, out var i))
                throw new CheckpointException(source, $"optimizer state has a buffer for unknown parameter '{name}'", name);
            var p = _params[i].Param;
            if (!t.shape.SequenceEqual(p.shape))
                throw new CheckpointException(source, $"optimizer buffer '{name}' has shape [{string.Join(",", t.shape)}], parameter has [{string.Join(",", p.shape)}]", name);
        }
        if (buffers.Count == 0) return;
        if (_params.FirstOrDefault(p => !buffers.ContainsKey(p.Name)) is { Name: not null } missing)
            throw new CheckpointException(source, $"optimizer state has no momentum buffer for parameter '{missing.Name}' " +
                $"({buffers.Count} of {_params.Count} present)", missing.Name);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        _momentum ??= zeros_like(_flat.Values).DetachFromDisposeScope();
        _started?.fill_(true);
        for (int i = 0; i < _params.Count; i++)
            _flat.Slice(_momentum, i).copy_(buffers[_params[i].Name]);
    }

    public void Dispose()
    {
        _momentum?.Dispose();
        _momentum = null;
        _started?.Dispose();
        _started = null;
        _flat.Dispose();
    }
}
