using GflTrainer.Training.Targets;
using static TorchSharp.torch;

namespace GflTrainer.Training.Losses;

/// <summary>
/// A batch's anchor targets built on the host before its step (issue 21): they need only the ground truth and the padded
/// shapes, so the loader's worker threads run the head's own target builder while the device runs the previous step.
/// The positives' level-major rows (<see cref="LevelRows"/>) and each image's positive count are read here, on the
/// host, so on a GPU the step loses the targets' kernels and its two device-to-host reads before backward (the
/// positives' <c>nonzero</c> and the images' counts). On the CPU the targets are the in-step ones bit for bit (tested);
/// on a GPU they are the CPU's, which the reference's GPU assignment can differ from only where float ties resolve
/// differently. Each build is independent and uses no shared state, so workers may build batches concurrently.
/// </summary>
internal sealed class HostTargets(IAnchorTargetBuilder builder)
{
    /// <summary>The targets of one batch as plain arrays (no tensors cross threads; <see cref="HostBatchTargets.ToDevice"/>
    /// makes them on the step's thread).</summary>
    /// <param name="boxes">per image its (G_i·4) float32 xyxy pixels.</param>
    /// <param name="labels">per image its (G_i) int64 labels.</param>
    /// <param name="imagePadShapes">per image its own padded (H, W).</param>
    /// <param name="batchShape">the batch's padded (H, W), which sets the feature maps.</param>
    public HostBatchTargets Build(IReadOnlyList<float[]> boxes, IReadOnlyList<long[]> labels,
        IReadOnlyList<(int H, int W)> imagePadShapes, (int H, int W) batchShape)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var featmaps = builder.Anchors.FeatmapSizes(batchShape);
        var gtBoxes = boxes.Select(b => tensor(b, [b.Length / 4, 4])).ToList();
        var gtLabels = labels.Select(l => tensor(l, [l.Length])).ToList();
        var t = builder.Build(featmaps, gtBoxes, gtLabels, imagePadShapes, CPU);
        var positiveRows = new LevelRows(t, imagePadShapes.Count).Positives(builder.NumClasses);
        return new HostBatchTargets(featmaps, t.AnchorsPerLevel.ToArray(), t.Labels.shape[1],
            t.Anchors.data<float>().ToArray(), t.ValidFlags.data<bool>().ToArray(), t.Labels.data<long>().ToArray(),
            t.LabelWeights.data<float>().ToArray(), t.BoxTargets.data<float>().ToArray(), t.PositivesPerImage.ToArray(),
            positiveRows.data<long>().ToArray());
    }
}

/// <summary>A batch's targets on the host (<see cref="HostTargets"/>): <see cref="GflTargets"/>' tensors as row-major arrays.</summary>
internal sealed record HostBatchTargets(
    IReadOnlyList<(int H, int W)> FeatmapSizes,
    long[] AnchorsPerLevel,
    long AnchorsPerImage,
    float[] Anchors,
    bool[] ValidFlags,
    long[] Labels,
    float[] LabelWeights,
    float[] BoxTargets,
    long[] PositivesPerImage,
    long[] PositiveRows)
{
    /// <summary>The targets as tensors on <paramref name="device"/>, in the caller's dispose scope (host-to-device copies
    /// only: nothing is read back).</summary>
    public GflTargets ToDevice(Device device)
    {
        long n = PositivesPerImage.Length, a = AnchorsPerImage;
        return new GflTargets(tensor(Anchors, [a, 4], device: device), AnchorsPerLevel, tensor(ValidFlags, [n, a], device: device),
            tensor(Labels, [n, a], device: device), tensor(LabelWeights, [n, a], device: device),
            tensor(BoxTargets, [n, a, 4], device: device), PositivesPerImage)
        {
            FeatmapSizes = FeatmapSizes,
            PositiveRows = tensor(PositiveRows, [PositiveRows.LongLength], device: device),
        };
    }
}
