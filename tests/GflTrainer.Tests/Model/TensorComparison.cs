using TorchSharp;

namespace GflTrainer.Tests.Model;

/// <summary>Exact equality (TorchSharp's <c>Tensor.equal</c> is element-wise, not torch.equal).</summary>
internal static class TensorComparison
{
    public static bool IsIdenticalTo(this torch.Tensor actual, torch.Tensor expected) =>
        actual.dtype == expected.dtype && actual.shape.SequenceEqual(expected.shape)
        && (actual.numel() == 0 || actual.eq(expected.to(actual.device)).all().item<bool>());
}
