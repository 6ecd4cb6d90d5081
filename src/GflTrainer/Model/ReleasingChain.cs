using TorchSharp;
using static TorchSharp.torch;

namespace GflTrainer.Model;

/// <summary>Runs modules one after another and releases each intermediate map as soon as the next module has consumed
/// it, as PyTorch's reference counting does (autograd keeps its own references to what backward needs). Dispose scopes
/// would otherwise hold every intermediate until the scope ends: for R50 at 1344x800, batch 2, the backbone's block
/// outputs alone exceed 1 GB in inference, and the head's 4+4 tower maps of P3 are ~140 MB.</summary>
internal static class ReleasingChain
{
    /// <returns>The last module's output; <paramref name="input"/> itself is left alone.</returns>
    public static Tensor Forward(IEnumerable<nn.Module<Tensor, Tensor>> modules, Tensor input)
    {
        var x = input;
        foreach (var module in modules)
        {
            var next = module.forward(x);
            if (!ReferenceEquals(x, input)) x.Dispose();
            x = next;
        }
        return x;
    }
}
