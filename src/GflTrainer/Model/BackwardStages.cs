using TorchSharp;
using static TorchSharp.torch;

namespace GflTrainer.Model;

/// <summary>
/// The training graph of one step cut into stages, so that backward can stop between them: the gradients of the later
/// stages' parameters are then complete, and a data-parallel run all-reduces them while backward runs through the
/// earlier stages (what DDP does from its autograd hooks). TorchSharp 0.107 has no tensor or post-accumulate-grad
/// hooks to learn when a parameter's gradient is ready, so the forward cuts the graph itself: <see cref="Cut"/> replaces
/// an activation with a detached leaf that requires grad, and <see cref="Backward"/> runs the loss's backward down to the
/// leaves, then from each cut's original activation with its leaf's gradient, last cut first.
/// </summary>
/// <remarks>
/// Each stage runs the same nodes on the same incoming gradient as one backward would, with one difference: the three
/// gradients that meet at a cut (the FPN lateral's and the next stage's two branches) are summed as a + (b + c) instead
/// of (a + b) + c, since b and c meet inside the later stage's backward. The gradients therefore agree with one
/// backward up to float rounding (4e-8 of the largest gradient, measured in StagewiseReductionTests), not bit for bit;
/// runs with the same setting stay bit-identical (exact resume holds). A custom autograd identity at each cut would keep
/// the sum's order, but TorchSharp's Function allocates an output-sized buffer per call and calls back into .NET from
/// the autograd engine's device threads. Cutting is only done while gradients reduce over ranks; a single process runs
/// one backward.
/// </remarks>
internal sealed class BackwardStages : IDisposable
{
    private sealed record CutPoint(Tensor Original, Tensor Leaf, IReadOnlyList<nn.Module> Owners);

    private readonly List<CutPoint> _cuts = [];

    /// <summary>Forward: the leaf that stands for <paramref name="x"/> in the rest of the forward (<paramref name="x"/>
    /// itself when no gradient flows through it, e.g. behind frozen stages). Both belong to this object from now on
    /// (no dispose scope releases them): the caller must not dispose the leaf.</summary>
    /// <param name="owners">the modules whose parameters are used only between the previous cut (or the input) and this
    /// one: their gradients are complete once backward has passed back through this cut.</param>
    public Tensor Cut(Tensor x, params nn.Module[] owners)
    {
        if (!x.requires_grad) return x;
        // This object owns both: the forward's dispose scopes end before backward needs them.
        var leaf = x.detach().requires_grad_(true).DetachFromDisposeScope();
        _cuts.Add(new CutPoint(x.DetachFromDisposeScope(), leaf, owners));
        return leaf;
    }

    /// <summary>Stages in backward order: 0 is the loss's own backward down to the cuts (the parameters no cut owns), then
    /// one per cut, the last cut first.</summary>
    public int Count => _cuts.Count + 1;

    /// <summary>The modules whose parameters stage <paramref name="stage"/> (in backward order) completes; stage 0
    /// completes every parameter that no other stage owns.</summary>
    public IReadOnlyList<nn.Module> OwnersOf(int stage) => stage == 0 ? [] : _cuts[_cuts.Count - stage].Owners;

    /// <summary>Runs backward from <paramref name="root"/> through every stage, calling <paramref name="stageDone"/> after
    /// each (in backward order, 0 first) while the gradients of its parameters are complete.</summary>
    public void Backward(Tensor root, Action<int> stageDone)
    {
        root.backward();
        stageDone(0);
        for (int i = _cuts.Count - 1; i >= 0; i--)
        {
            var cut = _cuts[i];
            using (var grad = cut.Leaf.grad)   // complete: every stage that consumed the leaf has run
                if (grad is not null)
                    autograd.backward(cut.Original, grad);
            cut.Leaf.grad = null;   // the activation-sized gradient is not needed any more
            stageDone(_cuts.Count - i);
        }
    }

    public void Dispose()
    {
        foreach (var cut in _cuts)
        {
            cut.Original.Dispose();
            cut.Leaf.Dispose();
        }
        _cuts.Clear();
    }
}
