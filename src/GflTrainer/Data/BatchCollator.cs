using GflTrainer.Runtime;
using GflTrainer.Data.Transforms;
using GflTrainer.Training.Losses;
using TorchSharp;
using static TorchSharp.torch;

namespace GflTrainer.Data;

/// <summary>Turns transformed samples into a <see cref="DetectionBatch"/> on the training device, images zero-padded
/// to the largest padded (multiple of 32) shape in the batch. On the CPU each uint8 image is normalised straight into
/// the batch tensor's memory (vectorised, no temporaries); on an accelerator each image is uploaded
/// as uint8 (4x less transfer than float) and normalised there. Uploads are queued without waiting for the device
/// (<see cref="HostToDevice"/>).</summary>
/// <param name="fixedShape">pads every batch to a fixed shape of its orientation instead (<c>data.batch_shape: fixed</c>);
/// null: to the batch's largest image.</param>
internal sealed class BatchCollator(Normalize normalize, Pad pad, Device device, FixedBatchShape? fixedShape = null)
{
    /// <param name="targets">the batch's training targets built on the host from the same samples (<see cref="HostTargets"/>),
    /// made into tensors on the device with the batch; null: none.</param>
    public DetectionBatch Collate(IReadOnlyList<TransformedSample> samples, HostBatchTargets? targets = null)
    {
        if (samples.Count == 0) throw new ArgumentException("empty batch", nameof(samples));
        var (batchH, batchW) = BatchShape(samples);
        var images = device.type == DeviceType.CPU
            ? OnHost(samples, batchH, batchW)
            : OnDevice(samples, batchH, batchW);
        var boxes = new List<Tensor>(samples.Count);
        var labels = new List<Tensor>(samples.Count);
        var ignored = new List<Tensor>(samples.Count);
        var metas = new List<ImageMeta>(samples.Count);
        foreach (var s in samples)
        {
            boxes.Add(HostToDevice.Upload(tensor(s.Boxes, [s.Boxes.Length / 4, 4]), device));
            labels.Add(HostToDevice.Upload(tensor(s.Labels, [s.Labels.Length]), device));
            ignored.Add(HostToDevice.Upload(tensor(s.IgnoredBoxes, [s.IgnoredBoxes.Length / 4, 4]), device));
            metas.Add(s.Meta with { PadHeight = pad.Padded(s.Height), PadWidth = pad.Padded(s.Width) });
        }
        return new DetectionBatch(images, boxes, labels, ignored, metas) { Targets = targets?.ToDevice(device) };
    }

    /// <summary>The batch's padded (H, W): the largest padded image shape, or the fixed shape that holds them all.</summary>
    public (int H, int W) BatchShape(IReadOnlyList<TransformedSample> samples)
    {
        var padded = samples.Select(s => (pad.Padded(s.Height), pad.Padded(s.Width))).ToList();
        return fixedShape?.For(padded) ?? (padded.Max(p => p.Item1), padded.Max(p => p.Item2));
    }

    /// <summary>The training targets of these samples, built on the calling thread's CPU from the shapes
    /// <see cref="Collate"/> gives them (each image's own padded shape, the batch's padded shape).</summary>
    public HostBatchTargets Targets(HostTargets builder, IReadOnlyList<TransformedSample> samples) =>
        builder.Build(samples.Select(s => s.Boxes).ToList(), samples.Select(s => s.Labels).ToList(),
            samples.Select(s => (pad.Padded(s.Height), pad.Padded(s.Width))).ToList(), BatchShape(samples));

    unsafe Tensor OnHost(IReadOnlyList<TransformedSample> samples, int batchH, int batchW)
    {
        var images = empty([samples.Count, 3, batchH, batchW], ScalarType.Float32);
        long plane = (long)batchH * batchW;
        fixed (byte* storage = images.bytes)
        {
            for (int i = 0; i < samples.Count; i++)
            {
                var s = samples[i];
                normalize.ToPlanes(s.Pixels, s.Height, s.Width, (float*)storage + i * 3 * plane, batchW, (int)plane, batchH);
            }
        }
        return images;
    }

    Tensor OnDevice(IReadOnlyList<TransformedSample> samples, int batchH, int batchW)
    {
        var images = zeros([samples.Count, 3, batchH, batchW], ScalarType.Float32, device);
        for (int i = 0; i < samples.Count; i++)
        {
            var s = samples[i];
            using (NewDisposeScope())
            {
                var hwc = HostToDevice.Upload(tensor(s.Pixels, [s.Height, s.Width, 3]), device);
                var chw = normalize.Apply(hwc.permute(2, 0, 1));
                images[i, .., ..s.Height, ..s.Width].copy_(chw);
            }
        }
        return images;
    }
}
