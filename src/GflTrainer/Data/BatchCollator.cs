using GflTrainer.Data.Transforms;
using TorchSharp;
using static TorchSharp.torch;

namespace GflTrainer.Data;

/// <summary>Turns transformed samples into a <see cref="DetectionBatch"/> on the training device: uploads each uint8
/// image, normalises it there (less host work and 4x less transfer than float), and writes it into a zero batch tensor
/// whose height/width are the largest padded (multiple of 32) shape in the batch.</summary>
internal sealed class BatchCollator(Normalize normalize, Pad pad, Device device)
{
    public DetectionBatch Collate(IReadOnlyList<TransformedSample> samples)
    {
        if (samples.Count == 0) throw new ArgumentException("empty batch", nameof(samples));
        int batchH = samples.Max(s => pad.Padded(s.Height)), batchW = samples.Max(s => pad.Padded(s.Width));
        var images = zeros([samples.Count, 3, batchH, batchW], ScalarType.Float32, device);
        var boxes = new List<Tensor>(samples.Count);
        var labels = new List<Tensor>(samples.Count);
        var ignored = new List<Tensor>(samples.Count);
        var metas = new List<ImageMeta>(samples.Count);
        for (int i = 0; i < samples.Count; i++)
        {
            var s = samples[i];
            using (NewDisposeScope())
            {
                var hwc = tensor(s.Pixels, [s.Height, s.Width, 3]).to(device);
                var chw = normalize.Apply(hwc.permute(2, 0, 1));
                images[i, .., ..s.Height, ..s.Width].copy_(chw);
            }
            boxes.Add(tensor(s.Boxes, [s.Boxes.Length / 4, 4], device: device));
            labels.Add(tensor(s.Labels, [s.Labels.Length], device: device));
            ignored.Add(tensor(s.IgnoredBoxes, [s.IgnoredBoxes.Length / 4, 4], device: device));
            metas.Add(s.Meta with { PadHeight = pad.Padded(s.Height), PadWidth = pad.Padded(s.Width) });
        }
        return new DetectionBatch(images, boxes, labels, ignored, metas);
    }
}
