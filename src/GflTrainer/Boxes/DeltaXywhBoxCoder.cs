using static TorchSharp.torch;

namespace GflTrainer.Boxes;

/// <summary>
/// mmdetection <c>DeltaXYWHBBoxCoder</c> (R-CNN's parametrisation, used by RetinaNet and ATSS): a box relative to a prior
/// is (dx, dy, dw, dh) = ((gx − px)/pw, (gy − py)/ph, log(gw/pw), log(gh/ph)) of the centres and sizes, normalised as
/// (delta − means) / stds. ATSS uses stds (0.1, 0.1, 0.2, 0.2), RetinaNet (1, 1, 1, 1); means are 0 in both.
/// </summary>
internal sealed class DeltaXywhBoxCoder(IReadOnlyList<double>? means = null, IReadOnlyList<double>? stds = null,
    double whRatioClip = 16.0 / 1000)
{
    public IReadOnlyList<double> Means { get; } = means ?? [0, 0, 0, 0];
    public IReadOnlyList<double> Stds { get; } = stds ?? [1, 1, 1, 1];

    readonly Runtime.DeviceConstant _means = new(means ?? [0, 0, 0, 0]);
    readonly Runtime.DeviceConstant _stds = new(stds ?? [1, 1, 1, 1]);

    /// <summary>atss_r50_fpn_1x_coco's coder: target_stds (0.1, 0.1, 0.2, 0.2).</summary>
    public static DeltaXywhBoxCoder Atss { get; } = new(stds: [0.1, 0.1, 0.2, 0.2]);

    /// <summary>The smallest/largest size ratio a decoded box may have to its prior: dw, dh are clamped to
    /// ±|log(whRatioClip)| (4.135 for mmdetection's 16/1000) so that exp cannot overflow.</summary>
    public double WhRatioClip { get; } = whRatioClip;

    /// <summary><c>bbox2delta</c>.</summary>
    /// <param name="priors">(n, 4) xyxy.</param>
    /// <param name="boxes">(n, 4) xyxy targets.</param>
    /// <returns>(n, 4) normalised deltas.</returns>
    public Tensor Encode(Tensor priors, Tensor boxes)
    {
        using var scope = NewDisposeScope();
        var (px, py, pw, ph) = CentreSize(priors);
        var (gx, gy, gw, gh) = CentreSize(boxes);
        var deltas = stack([(gx - px) / pw, (gy - py) / ph, (gw / pw).log(), (gh / ph).log()], -1);
        return ((deltas - Row(_means, deltas)) / Row(_stds, deltas)).MoveToOuterDisposeScope();
    }

    /// <summary><c>delta2bbox</c> (add_ctr_clamp off, as both heads configure it).</summary>
    /// <param name="priors">(n, 4) xyxy.</param>
    /// <param name="deltas">(n, 4) normalised deltas.</param>
    /// <param name="maxShape">(H, W): clip x to [0, W] and y to [0, H] (test time); null: no clipping (training).</param>
    /// <returns>(n, 4) xyxy.</returns>
    public Tensor Decode(Tensor priors, Tensor deltas, (int H, int W)? maxShape = null)
    {
        using var scope = NewDisposeScope();
        var denorm = deltas * Row(_stds, deltas) + Row(_means, deltas);
        var dxy = denorm.narrow(1, 0, 2);
        var maxRatio = Math.Abs(Math.Log(WhRatioClip));
        var dwh = denorm.narrow(1, 2, 2).clamp(-maxRatio, maxRatio);
        var pxy = (priors.narrow(1, 0, 2) + priors.narrow(1, 2, 2)) * 0.5;
        var pwh = priors.narrow(1, 2, 2) - priors.narrow(1, 0, 2);
        var gxy = pxy + pwh * dxy;
        var gwh = pwh * dwh.exp();
        var boxes = cat([gxy - gwh * 0.5, gxy + gwh * 0.5], -1);
        if (maxShape is { } shape)
            boxes = boxes.clamp_min(0).minimum(Runtime.HostToDevice.Upload(tensor(new float[] { shape.W, shape.H, shape.W, shape.H }), boxes.device).to(boxes.dtype));
        return boxes.MoveToOuterDisposeScope();
    }

    static (Tensor X, Tensor Y, Tensor W, Tensor H) CentreSize(Tensor b)
    {
        var (x1, y1, x2, y2) = (b[TensorIndex.Colon, 0], b[TensorIndex.Colon, 1], b[TensorIndex.Colon, 2], b[TensorIndex.Colon, 3]);
        return ((x1 + x2) * 0.5, (y1 + y2) * 0.5, x2 - x1, y2 - y1);
    }

    static Tensor Row(Runtime.DeviceConstant values, Tensor like) => values.On(like.device, like.dtype).unsqueeze(0);
}
