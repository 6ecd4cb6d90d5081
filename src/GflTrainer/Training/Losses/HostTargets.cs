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
    /// <summary>The targets of one batch as CPU tensors that belong to no dispose scope, so they can leave the worker's
    /// thread (<see cref="HostBatchTargets.ToDevice"/> makes the step's tensors from them on the step's thread).</summary>
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
        // Kept as the builder made them: copying them out into .NET arrays and back halved GFL's loader throughput on
        // BCCD (docs/performance.md "Targets built ahead").
        return new HostBatchTargets(featmaps, t.AnchorsPerLevel.ToArray(), t.PositivesPerImage.ToArray(),
            Keep(t.Anchors), Keep(t.ValidFlags), Keep(t.Labels), Keep(t.LabelWeights), Keep(t.BoxTargets), Keep(positiveRows));
    }

    // A handle of its own, outside every dispose scope: the builder's may be released with its GflTargets.
    static Tensor Keep(Tensor t) => t.detach().DetachFromDisposeScope();
}

/// <summary>A batch's targets on the host (<see cref="HostTargets"/>): <see cref="GflTargets"/>' tensors on the CPU, owned
/// by this object until <see cref="Dispose"/>.</summary>
internal sealed class HostBatchTargets(IReadOnlyList<(int H, int W)> featmapSizes, long[] anchorsPerLevel, long[] positivesPerImage,
    Tensor anchors, Tensor validFlags, Tensor labels, Tensor labelWeights, Tensor boxTargets, Tensor positiveRows) : IDisposable
{
    public IReadOnlyList<(int H, int W)> FeatmapSizes => featmapSizes;

    /// <summary>The targets as tensors on <paramref name="device"/>, in the caller's dispose scope (host-to-device copies
    /// queued without waiting for the device, nothing is read back; on the CPU the same memory). This object may be
    /// disposed afterwards.</summary>
    public GflTargets ToDevice(Device device)
    {
        // On the CPU .to gives a new handle of the same memory, which the caller's scope releases (this object its own).
        Tensor Upload(Tensor t) => device.type == TorchSharp.DeviceType.CPU ? t.to(device) : Runtime.HostToDevice.Upload(t, device);
        return new(Upload(anchors), anchorsPerLevel, Upload(validFlags), Upload(labels), Upload(labelWeights), Upload(boxTargets), positivesPerImage)
        {
            FeatmapSizes = featmapSizes,
            PositiveRows = Upload(positiveRows),
        };
    }

    public void Dispose()
    {
        foreach (var t in new[] { anchors, validFlags, labels, labelWeights, boxTargets, positiveRows }) t.Dispose();
    }
}
