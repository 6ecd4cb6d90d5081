using TorchSharp;

namespace GflTrainer.Data;

/// <summary>A collated batch.</summary>
/// <param name="Images">(N, 3, H, W) float32, normalised RGB, zero-padded to the batch shape (multiple of 32).</param>
/// <param name="GtBoxes">per image (G_i, 4) float32 xyxy in transformed-image pixels; G_i may be 0.</param>
/// <param name="GtLabels">per image (G_i,) int64 contiguous labels 0..C-1.</param>
/// <param name="IgnoredBoxes">per image (K_i, 4) float32 crowd regions (iscrowd=1), never positives.</param>
/// <param name="Metas">per image metadata for mapping predictions back.</param>
public sealed record DetectionBatch(
    torch.Tensor Images,
    IReadOnlyList<torch.Tensor> GtBoxes,
    IReadOnlyList<torch.Tensor> GtLabels,
    IReadOnlyList<torch.Tensor> IgnoredBoxes,
    IReadOnlyList<ImageMeta> Metas) : IDisposable
{
    /// <summary>The training targets, built by the loader's workers ahead of the step (issue 21), or null.</summary>
    internal Training.Targets.GflTargets? Targets { get; init; }

    public void Dispose()
    {
        Targets?.Dispose();
        Images.Dispose();
        foreach (var t in GtBoxes) t.Dispose();
        foreach (var t in GtLabels) t.Dispose();
        foreach (var t in IgnoredBoxes) t.Dispose();
    }
}
