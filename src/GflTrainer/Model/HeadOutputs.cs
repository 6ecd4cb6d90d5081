using TorchSharp;

namespace GflTrainer.Model;

/// <summary>Raw dense-head outputs, one entry per FPN level P3..P7 (strides 8..128).</summary>
/// <param name="ClassScores">per level (N, A·C, H_l, W_l) logits (before sigmoid), A anchors per location (1 for GFL and
/// ATSS).</param>
/// <param name="BoxPredictions">per level, GFL: (N, 4(R+1), H_l, W_l) bin logits after the level's Scale, side-major
/// [l0..lR, t0..tR, r0..rR, b0..bR] (before softmax), distances in stride units once integrated; ATSS and RetinaNet:
/// (N, 4A, H_l, W_l) DeltaXYWH deltas.</param>
public sealed record HeadOutputs(IReadOnlyList<torch.Tensor> ClassScores, IReadOnlyList<torch.Tensor> BoxPredictions)
{
    /// <summary>ATSS only: per level (N, A, H_l, W_l) centerness logits; null for heads without the branch.</summary>
    public IReadOnlyList<torch.Tensor>? Centerness { get; init; }
}
