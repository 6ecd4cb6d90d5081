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
/// <param name="positiveCapacity">when positive, the positives' rows of a batch that has 1..capacity of them are padded
/// to exactly this many (<see cref="GflTargets.PositiveMask"/>), so that the step's tensors have the same shapes for
/// every batch of one image shape: what a CUDA graph, captured once and replayed, needs (issue 21). A batch with no
/// positive, or more than the capacity, keeps its own count (a graph runner runs it uncaptured). 0: never padded.</param>
internal sealed class HostTargets(IAnchorTargetBuilder builder, int positiveCapacity = 0)
{
    /// <summary>See the constructor; 0: the positives are not padded.</summary>
    public int PositiveCapacity { get; } = positiveCapacity >= 0 ? positiveCapacity
        : throw new ArgumentOutOfRangeException(nameof(positiveCapacity), positiveCapacity, "must be 0 (off) or positive");

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
        var (rows, mask) = Pad(positiveRows, PositiveCapacity);
        // Kept as the builder made them: copying them out into .NET arrays and back halved GFL's loader throughput on
        // BCCD (docs/performance.md "Targets built ahead").
        return new HostBatchTargets(featmaps, t.AnchorsPerLevel.ToArray(), t.PositivesPerImage.ToArray(),
            Keep(t.Anchors), Keep(t.ValidFlags), Keep(t.Labels), Keep(t.LabelWeights), Keep(t.BoxTargets), Keep(rows),
            mask is null ? null : Keep(mask), Keep(tensor(t.ClassificationAvgFactor, float64)));
    }

    /// <summary>The (P,) positive rows padded to <paramref name="capacity"/> by repeating the first one, with the (capacity,)
    /// 0/1 mask of the real ones; unchanged (no mask) for P = 0, P > capacity or capacity 0. A repeat, not an arbitrary
    /// row: every per-positive value of a pad (its IoU, DFL target, gradient) is the first positive's, finite and
    /// written where that positive's own value goes, so scatters (the quality targets, QFL's entries) are unchanged and
    /// the sums see 0 x a finite number. A background row would index the classes with the background label.</summary>
    internal static (Tensor Rows, Tensor? Mask) Pad(Tensor rows, int capacity)
    {
        var count = rows.shape[0];
        if (capacity == 0 || count == 0 || count > capacity) return (rows, null);
        var pads = capacity - count;
        return (cat([rows, rows.narrow(0, 0, 1).expand(pads)], 0),
            cat([ones(count, dtype: float32), zeros(pads, dtype: float32)], 0));
    }

    // A handle of its own, outside every dispose scope: the builder's may be released with its GflTargets.
    static Tensor Keep(Tensor t) => t.detach().DetachFromDisposeScope();
}

/// <summary>A batch's targets on the host (<see cref="HostTargets"/>): <see cref="GflTargets"/>' tensors on the CPU, owned
/// by this object until <see cref="Dispose"/>.</summary>
internal sealed class HostBatchTargets(IReadOnlyList<(int H, int W)> featmapSizes, long[] anchorsPerLevel, long[] positivesPerImage,
    Tensor anchors, Tensor validFlags, Tensor labels, Tensor labelWeights, Tensor boxTargets, Tensor positiveRows, Tensor? positiveMask,
    Tensor classificationNormaliser) : IDisposable
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
            PositiveMask = positiveMask is null ? null : Upload(positiveMask),
            ClassificationNormaliser = Upload(classificationNormaliser),
        };
    }

    /// <summary>The positives' rows: the real count, or the padded capacity (<see cref="HostTargets.PositiveCapacity"/>).</summary>
    public long PositiveRowCount => positiveRows.shape[0];

    /// <summary>The positives were padded to the capacity.</summary>
    public bool PositivesPadded => positiveMask is not null;

    public void Dispose()
    {
        foreach (var t in new[] { anchors, validFlags, labels, labelWeights, boxTargets, positiveRows, positiveMask, classificationNormaliser }) t?.Dispose();
    }
}
