using static TorchSharp.torch;

namespace GflTrainer.Model;

/// <summary>
/// mmdetection <c>AnchorGenerator</c> (center_offset 0, scale_major): per cell A = |ratios| x scalesPerOctave anchors
/// centred on the cell's top-left corner (x·s, y·s), of width s·octaveBaseScale·2^(i/scalesPerOctave)/sqrt(r) and
/// height s·octaveBaseScale·2^(i/scalesPerOctave)·sqrt(r), ratio-major. GFL and ATSS: one square anchor (ratio 1, one
/// scale, octave 8); RetinaNet: 9 (ratios 0.5, 1, 2 x 3 scales from octave 4). Anchors are row-major per level
/// (index (y·w + x)·A + a), levels concatenated P3 first.
/// </summary>
internal sealed class AnchorGenerator(IReadOnlyList<int> strides, double octaveBaseScale = 8, int scalesPerOctave = 1,
    IReadOnlyList<double>? ratios = null)
{
    private readonly IReadOnlyList<double> _ratios = ratios ?? [1.0];
    private Lazy<Runtime.DeviceConstant>[]? _baseAnchors;

    /// <summary>The anchors of <c>model.head</c> (strides, octave_base_scale, scales_per_octave, ratios): the one place
    /// the loss, the post-processing and the export build them from the config.</summary>
    public static AnchorGenerator FromConfig(Config.HeadConfig h) => new(h.Strides, h.OctaveBaseScale, h.ScalesPerOctave, h.Ratios);

    /// <summary>Strides of the levels, P3 first (8, 16, 32, 64, 128 for GFL).</summary>
    public IReadOnlyList<int> Strides { get; } = strides;

    /// <summary>Anchors per feature-map cell (1 for GFL and ATSS, 9 for RetinaNet).</summary>
    public int AnchorsPerLocation => _ratios.Count * scalesPerOctave;

    /// <summary>The feature map sizes a ResNet-FPN gives a padded input: every stride-2 convolution (kernel 3, padding 1;
    /// the stem's kernel 7, padding 3; the 1x1 shortcut) and the stem's pooling give ceil(x / 2), so the level of stride s
    /// has ceil(pad / s) cells. Alone in its batch an image's anchors are then all valid; in a larger batch the extra
    /// cells are invalid for it (<see cref="ValidExtent"/>), so the assignment is the same either way. The losses check
    /// targets laid out from these sizes against the head's actual outputs before using them.</summary>
    public (int H, int W)[] FeatmapSizes((int H, int W) padShape) =>
        Strides.Select(s => ((padShape.H + s - 1) / s, (padShape.W + s - 1) / s)).ToArray();

    /// <summary>The anchors of cell (0, 0), computed in float32 as mmdetection's gen_single_level_base_anchors: scales
    /// float32(octave_base_scale·2^(i/n)), h_ratio = sqrt(r), w_ratio = 1/h_ratio, w = (s·w_ratio)·scale.</summary>
    /// <returns>(A, 4) float32 xyxy pixels: a view of values made once per level and device (a copy up from the host at
    /// every use would wait for a GPU), never to be written.</returns>
    public Tensor BaseAnchor(int level, Device? device = null)
    {
        var made = LazyInitializer.EnsureInitialized(ref _baseAnchors, () => Strides.Select((_, l) => new Lazy<Runtime.DeviceConstant>(() =>
        {
            using var cpu = ComputeBaseAnchor(l);
            return new Runtime.DeviceConstant(cpu.data<float>().ToArray().Select(v => (double)v).ToList());
        })).ToArray());
        return made[level].Value.On(device ?? CPU).view(-1, 4);
    }

    private Tensor ComputeBaseAnchor(int level)
    {
        using var scope = NewDisposeScope();
        var scales = tensor(Enumerable.Range(0, scalesPerOctave).Select(i => (float)(Math.Pow(2, (double)i / scalesPerOctave) * octaveBaseScale)).ToArray());
        var hRatios = tensor(_ratios.Select(r => (float)r).ToArray()).sqrt();
        var wRatios = hRatios.reciprocal();
        var ws = (wRatios.unsqueeze(1) * (float)Strides[level] * scales.unsqueeze(0)).reshape(-1);
        var hs = (hRatios.unsqueeze(1) * (float)Strides[level] * scales.unsqueeze(0)).reshape(-1);
        var halfW = ws * 0.5f;
        var halfH = hs * 0.5f;
        return stack([-halfW, -halfH, halfW, halfH], -1).MoveToOuterDisposeScope();
    }

    /// <summary>Anchors of one level.</summary>
    /// <param name="featmapSize">(h, w) of that level's feature map.</param>
    /// <returns>(h·w·A, 4) float32 xyxy pixels, row-major, the A anchors of a cell together.</returns>
    public Tensor LevelAnchors(int level, (int H, int W) featmapSize, Device? device = null)
    {
        using var scope = NewDisposeScope();
        var stride = Strides[level];
        var shiftX = arange(0, featmapSize.W, dtype: float32, device: device) * stride;
        var shiftY = arange(0, featmapSize.H, dtype: float32, device: device) * stride;
        // x varies fastest, as in the reference's meshgrid(row_major=True).
        var xx = shiftX.repeat(featmapSize.H);
        var yy = shiftY.repeat_interleave(featmapSize.W);
        var shifts = stack(new[] { xx, yy, xx, yy }, -1);
        return (BaseAnchor(level, device).unsqueeze(0) + shifts.unsqueeze(1)).reshape(-1, 4).MoveToOuterDisposeScope();
    }

    /// <summary><see cref="GridAnchors"/> of all levels concatenated (P3 first): the layout the target builders and
    /// the losses index.</summary>
    /// <returns>(A, 4) float32 xyxy pixels.</returns>
    public Tensor AllGridAnchors(IReadOnlyList<(int H, int W)> featmapSizes, Device? device = null)
    {
        using var scope = NewDisposeScope();
        return cat(GridAnchors(featmapSizes, device).ToList(), 0).MoveToOuterDisposeScope();
    }

    /// <summary>Anchors of every level, P3 first.</summary>
    public IReadOnlyList<Tensor> GridAnchors(IReadOnlyList<(int H, int W)> featmapSizes, Device? device = null) =>
        featmapSizes.Select((size, level) => LevelAnchors(level, size, device)).ToArray();

    /// <summary>How many rows and columns of a level lie over an image whose own padded shape is
    /// <paramref name="padShape"/>: min(ceil(pad/s), feature size), as mmdetection's valid_flags.</summary>
    public (int Rows, int Cols) ValidExtent(int level, (int H, int W) featmapSize, (int H, int W) padShape)
    {
        var stride = Strides[level];
        var rows = Math.Min((padShape.H + stride - 1) / stride, featmapSize.H);
        var cols = Math.Min((padShape.W + stride - 1) / stride, featmapSize.W);
        return (rows, cols);
    }

    /// <summary>Valid flags of one level for one image inside a larger padded batch (a cell's flag for each of its A anchors).</summary>
    /// <returns>(h·w·A,) bool, row-major.</returns>
    public Tensor ValidFlags(int level, (int H, int W) featmapSize, (int H, int W) padShape, Device? device = null)
    {
        using var scope = NewDisposeScope();
        var (rows, cols) = ValidExtent(level, featmapSize, padShape);
        var validY = arange(featmapSize.H, device: device) < rows;
        var validX = arange(featmapSize.W, device: device) < cols;
        var cells = (validY.unsqueeze(1) & validX.unsqueeze(0)).reshape(-1);
        return (AnchorsPerLocation == 1 ? cells : cells.repeat_interleave(AnchorsPerLocation)).MoveToOuterDisposeScope();
    }

    /// <summary>Indices of the valid anchors of every level (levels concatenated, P3 first), ascending: what
    /// <c>cat(ValidFlags).nonzero()</c> gives, built from each level's valid rectangle (<see cref="ValidExtent"/>), which
    /// the host knows, so no device-to-host sync per image (issue 21).</summary>
    /// <returns>(n,) int64.</returns>
    public Tensor ValidIndex(IReadOnlyList<(int H, int W)> featmapSizes, (int H, int W) padShape, Device? device = null)
    {
        using var scope = NewDisposeScope();
        var parts = new List<Tensor>(featmapSizes.Count);
        long offset = 0;
        for (int level = 0; level < featmapSizes.Count; level++)
        {
            var size = featmapSizes[level];
            var (rows, cols) = ValidExtent(level, size, padShape);
            // anchor (r, c, a) of the level is row (r·W + c)·A + a, in row-major order
            var cells = (arange(rows, dtype: int64, device: device).unsqueeze(1) * size.W + arange(cols, dtype: int64, device: device)).reshape(-1);
            var index = AnchorsPerLocation == 1 ? cells
                : (cells.unsqueeze(1) * AnchorsPerLocation + arange(AnchorsPerLocation, dtype: int64, device: device)).reshape(-1);
            parts.Add(index + offset);
            offset += (long)size.H * size.W * AnchorsPerLocation;
        }
        return cat(parts, 0).MoveToOuterDisposeScope();
    }

    /// <summary>An image's valid anchors, levels concatenated: their indices (<see cref="ValidIndex"/>, no host sync)
    /// and the (A,) flags made from them (equal to <see cref="ValidFlags"/> of every level: tested).</summary>
    public (Tensor Flags, Tensor Index) Valid(IReadOnlyList<(int H, int W)> featmapSizes, (int H, int W) padShape, Device? device = null)
    {
        long total = featmapSizes.Sum(s => (long)s.H * s.W) * AnchorsPerLocation;
        var index = ValidIndex(featmapSizes, padShape, device);
        return (zeros(total, dtype: ScalarType.Bool, device: device).index_fill_(0, index, true), index);
    }

    /// <summary>Centre of each anchor box, ((x1 + x2) / 2, (y1 + y2) / 2) as the head's anchor_center.</summary>
    /// <param name="anchors">(n, 4) xyxy.</param>
    /// <returns>(n, 2).</returns>
    public static Tensor Centers(Tensor anchors)
    {
        using var scope = NewDisposeScope();
        var cx = (anchors[TensorIndex.Colon, 2] + anchors[TensorIndex.Colon, 0]) / 2;
        var cy = (anchors[TensorIndex.Colon, 3] + anchors[TensorIndex.Colon, 1]) / 2;
        return stack(new[] { cx, cy }, -1).MoveToOuterDisposeScope();
    }
}
