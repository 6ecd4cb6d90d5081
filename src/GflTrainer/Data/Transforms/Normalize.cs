using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static TorchSharp.torch;

namespace GflTrainer.Data.Transforms;

/// <summary>(img − mean) / std per RGB channel on float32, as mmdetection 3.x's DetDataPreprocessor (2.x multiplies
/// by 1/std, which can differ in the last bit). Defaults: the ImageNet statistics of the R-50 caffe-free weights.</summary>
internal sealed class Normalize
{
    public static readonly float[] ImageNetMean = [123.675f, 116.28f, 103.53f];
    public static readonly float[] ImageNetStd = [58.395f, 57.12f, 57.375f];

    public Normalize(float[]? mean = null, float[]? std = null)
    {
        Mean = mean ?? ImageNetMean;
        Std = std ?? ImageNetStd;
        if (Mean.Length != 3 || Std.Length != 3) throw new GflConfigException("normalize mean/std need 3 values (RGB)");
    }

    public float[] Mean { get; }
    public float[] Std { get; }

    /// <summary>Host path of the collator: normalises an RGB HWC uint8 image into the (3, H, W) planes at
    /// <paramref name="dst"/> (batch row length <paramref name="rowStride"/>, plane size <paramref name="planeStride"/>)
    /// and zeroes the rest of each plane up to <paramref name="padHeight"/> x <paramref name="rowStride"/>. The same two
    /// IEEE float32 operations as <see cref="Apply"/> ((v − mean) / std, vector or scalar), so the bits are identical.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public unsafe void ToPlanes(byte[] hwc, int height, int width, float* dst, int rowStride, int planeStride, int padHeight)
    {
        float m0 = Mean[0], m1 = Mean[1], m2 = Mean[2], s0 = Std[0], s1 = Std[1], s2 = Std[2];
        fixed (byte* src = hwc)
        {
            for (int y = 0; y < height; y++)
            {
                byte* s = src + (long)y * width * 3;
                float* p0 = dst + (long)y * rowStride, p1 = p0 + planeStride, p2 = p1 + planeStride;
                int x = Avx2.IsSupported ? RowAvx2(s, width, p0, p1, p2) : 0;
                for (; x < width; x++)
                {
                    p0[x] = ((float)s[3 * x] - m0) / s0;
                    p1[x] = ((float)s[3 * x + 1] - m1) / s1;
                    p2[x] = ((float)s[3 * x + 2] - m2) / s2;
                }
                if (rowStride > width)
                    for (int c = 0; c < 3; c++) new Span<float>(p0 + (long)c * planeStride + width, rowStride - width).Clear();
            }
            for (int c = 0; c < 3; c++)
                for (int y = height; y < padHeight; y++) new Span<float>(dst + (long)c * planeStride + (long)y * rowStride, rowStride).Clear();
        }
    }

    const byte Z = 0x80;   // pshufb: a set high bit writes 0
    static readonly Vector128<byte> RA = Vector128.Create((byte)0, 3, 6, 9, 12, 15, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z);
    static readonly Vector128<byte> RB = Vector128.Create(Z, Z, Z, Z, Z, Z, 2, 5, 8, 11, 14, Z, Z, Z, Z, Z);
    static readonly Vector128<byte> RC = Vector128.Create(Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, 1, 4, 7, 10, 13);
    static readonly Vector128<byte> GA = Vector128.Create((byte)1, 4, 7, 10, 13, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z);
    static readonly Vector128<byte> GB = Vector128.Create(Z, Z, Z, Z, Z, 0, 3, 6, 9, 12, 15, Z, Z, Z, Z, Z);
    static readonly Vector128<byte> GC_ = Vector128.Create(Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, 2, 5, 8, 11, 14);
    static readonly Vector128<byte> BA = Vector128.Create((byte)2, 5, 8, 11, 14, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z);
    static readonly Vector128<byte> BB = Vector128.Create(Z, Z, Z, Z, Z, 1, 4, 7, 10, 13, Z, Z, Z, Z, Z, Z);
    static readonly Vector128<byte> BC = Vector128.Create(Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, 0, 3, 6, 9, 12, 15);

    /// <summary>16 pixels per step: three 16-byte loads are split into R, G and B bytes with pshufb, widened to
    /// float32 and normalised 8 lanes at a time. Returns the first column left for the scalar loop.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    unsafe int RowAvx2(byte* s, int width, float* p0, float* p1, float* p2)
    {
        var m0 = Vector256.Create(Mean[0]); var m1 = Vector256.Create(Mean[1]); var m2 = Vector256.Create(Mean[2]);
        var s0 = Vector256.Create(Std[0]); var s1 = Vector256.Create(Std[1]); var s2 = Vector256.Create(Std[2]);
        int x = 0;
        for (; x + 16 <= width; x += 16, s += 48)
        {
            var a = Sse2.LoadVector128(s); var b = Sse2.LoadVector128(s + 16); var c = Sse2.LoadVector128(s + 32);
            Store(Ssse3.Shuffle(a, RA) | Ssse3.Shuffle(b, RB) | Ssse3.Shuffle(c, RC), m0, s0, p0 + x);
            Store(Ssse3.Shuffle(a, GA) | Ssse3.Shuffle(b, GB) | Ssse3.Shuffle(c, GC_), m1, s1, p1 + x);
            Store(Ssse3.Shuffle(a, BA) | Ssse3.Shuffle(b, BB) | Ssse3.Shuffle(c, BC), m2, s2, p2 + x);
        }
        return x;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static unsafe void Store(Vector128<byte> v, Vector256<float> mean, Vector256<float> std, float* dst)
    {
        var lo = Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(v));
        var hi = Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(Sse2.ShiftRightLogical128BitLane(v, 8)));
        ((lo - mean) / std).Store(dst);
        ((hi - mean) / std).Store(dst + 8);
    }

    /// <param name="image">(3, H, W) uint8 RGB.</param>
    /// <returns>(3, H, W) float32 on the same device.</returns>
    public Tensor Apply(Tensor image)
    {
        using var mean = tensor(Mean, device: image.device).view(3, 1, 1);
        using var std = tensor(Std, device: image.device).view(3, 1, 1);
        using var f = image.to_type(ScalarType.Float32);
        var centred = f.sub(mean);
        return centred.div_(std);   // in place: returns centred itself
    }
}
