using static TorchSharp.torch;

namespace GflTrainer.Boxes;

/// <summary>
/// Class-aware greedy NMS (mmcv <c>batched_nms</c> semantics): boxes are visited by descending score; a box is
/// suppressed when its IoU (no "+1") with a kept box of the same class is strictly greater than the threshold
/// (equal is kept). TorchSharp has no NMS op; the candidate list is at most a few thousand boxes after the
/// per-level top-k, so a loop over CPU copies costs far less than the network forward.
/// </summary>
internal static class Nms
{
    /// <param name="boxes">(n, 4) xyxy float.</param>
    /// <param name="scores">(n,) float.</param>
    /// <param name="labels">(n,) int64 class of each box; boxes of different classes never suppress each other.</param>
    /// <param name="iouThreshold">mmdetection GFL test_cfg: 0.6.</param>
    /// <param name="minBoxSize">when given, only boxes wider and taller than this take part (mmdetection's min_bbox_size
    /// filter before NMS: the others are neither kept nor suppress any), decided here on the same copy.</param>
    /// <returns>(k,) int64 indices of the kept boxes on the inputs' device, sorted by descending score.</returns>
    public static Tensor Batched(Tensor boxes, Tensor scores, Tensor labels, double iouThreshold, double? minBoxSize = null)
    {
        var n = (int)scores.shape[0];
        if (n == 0) return zeros(0, dtype: int64, device: scores.device);
        // One device-to-host copy (on a GPU each copy waits for the device): boxes, score and label side by side; the
        // labels are class indices, exact in float32.
        float[] rows;
        using (var packed = cat([boxes.detach().to(float32), scores.detach().to(float32).unsqueeze(1), labels.to(float32).unsqueeze(1)], 1))
        using (var host = packed.cpu().contiguous())
            rows = host.data<float>().ToArray();
        var box = new float[4 * n];
        var score = new float[n];
        var label = new long[n];
        for (var i = 0; i < n; i++)
        {
            Array.Copy(rows, 6 * i, box, 4 * i, 4);
            score[i] = rows[6 * i + 4];
            label[i] = (long)rows[6 * i + 5];
        }

        // Descending score; equal scores keep input order so the result is deterministic. Boxes too small take no part
        // (the float32 widths and comparison of the reference's filter on the device).
        var order = Enumerable.Range(0, n).ToArray();
        if (minBoxSize is { } min)
        {
            var limit = (float)min;
            order = order.Where(i => box[4 * i + 2] - box[4 * i] > limit && box[4 * i + 3] - box[4 * i + 1] > limit).ToArray();
        }
        Array.Sort(order, (a, b) => score[a] != score[b] ? score[b].CompareTo(score[a]) : a.CompareTo(b));

        var area = new float[n];
        for (var i = 0; i < n; i++)
            area[i] = (box[4 * i + 2] - box[4 * i]) * (box[4 * i + 3] - box[4 * i + 1]);

        var suppressed = new bool[n];
        var keep = new List<long>();
        var threshold = (float)iouThreshold;
        for (var oi = 0; oi < order.Length; oi++)
        {
            var i = order[oi];
            if (suppressed[i]) continue;
            keep.Add(i);
            for (var oj = oi + 1; oj < order.Length; oj++)
            {
                var j = order[oj];
                if (suppressed[j] || label[j] != label[i]) continue;
                var w = MathF.Max(0f, MathF.Min(box[4 * i + 2], box[4 * j + 2]) - MathF.Max(box[4 * i], box[4 * j]));
                var h = MathF.Max(0f, MathF.Min(box[4 * i + 3], box[4 * j + 3]) - MathF.Max(box[4 * i + 1], box[4 * j + 1]));
                var inter = w * h;
                if (inter / (area[i] + area[j] - inter) > threshold) suppressed[j] = true;
            }
        }
        return Runtime.HostToDevice.Upload(tensor(keep.ToArray(), dtype: int64), scores.device);
    }
}
