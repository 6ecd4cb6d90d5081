using TorchSharp;

namespace GflTrainer.Model;

/// <summary>Raw GFL head outputs, one entry per FPN level P3..P7 (strides 8..128).</summary>
/// <param name="ClassScores">per level (N, C, H_l, W_l) logits (before sigmoid).</param>
/// <param name="BoxPredictions">per level (N, 4(R+1), H_l, W_l) bin logits after the level's Scale, side-major
/// [l0..lR, t0..tR, r0..rR, b0..bR] (before softmax), distances in stride units once integrated.</param>
public sealed record HeadOutputs(IReadOnlyList<torch.Tensor> ClassScores, IReadOnlyList<torch.Tensor> BoxPredictions);
