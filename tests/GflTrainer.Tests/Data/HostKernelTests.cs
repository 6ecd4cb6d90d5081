using GflTrainer.Data;
using GflTrainer.Data.Transforms;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Data;

/// <summary>The vectorised host kernels of the input pipeline against their plain definitions.</summary>
public class HostKernelTests
{
    [Theory]
    [InlineData(37, 5)]    // 2 vector steps of 16 pixels and a scalar tail of 5
    [InlineData(16, 3)]    // exactly one vector step
    [InlineData(7, 2)]     // scalar only
    public unsafe void ToPlanes_IsBitIdenticalToLibtorchNormalizeAndZeroesThePadding(int width, int height)
    {
        using var scope = NewDisposeScope();
        var rng = new Random(width * 31 + height);
        var hwc = new byte[width * height * 3];
        rng.NextBytes(hwc);
        hwc[0] = 0; hwc[1] = 255;
        var norm = new Normalize();
        var expected = norm.Apply(tensor(hwc, [height, width, 3]).permute(2, 0, 1)).contiguous().data<float>().ToArray();
        int rowStride = width + 11, padH = height + 2, plane = rowStride * padH;
        var planes = new float[3 * plane];
        Array.Fill(planes, float.NaN);   // every value must be written
        fixed (float* p = planes) norm.ToPlanes(hwc, height, width, p, rowStride, plane, padH);
        for (int c = 0; c < 3; c++)
        for (int y = 0; y < padH; y++)
        for (int x = 0; x < rowStride; x++)
        {
            float got = planes[c * plane + y * rowStride + x];
            float want = y < height && x < width ? expected[(c * height + y) * width + x] : 0f;
            Assert.True(BitConverter.SingleToInt32Bits(want) == BitConverter.SingleToInt32Bits(got), $"c={c} y={y} x={x}: {want} vs {got}");
        }
    }

    [Fact]
    public void BgraToRgb_DropsAlphaAndSwapsRedAndBlue()
    {
        foreach (int pixels in new[] { 1, 7, 8, 9, 33 })
        {
            var bgra = new byte[pixels * 4];
            new Random(pixels).NextBytes(bgra);
            var rgb = new byte[pixels * 3];
            ImageDecoder.BgraToRgb(bgra, rgb, pixels);
            for (int i = 0; i < pixels; i++)
                Assert.Equal(new[] { bgra[4 * i + 2], bgra[4 * i + 1], bgra[4 * i] }, rgb[(3 * i)..(3 * i + 3)]);
        }
    }

    [Fact]
    public void PixelBufferPool_ReusesExactLengthsAndStaysBounded()
    {
        const int Size = 1 << 20;
        var a = PixelBufferPool.Rent(Size + 3);
        Assert.Equal(Size + 3, a.Length);
        PixelBufferPool.Return(a);
        Assert.Same(a, PixelBufferPool.Rent(Size + 3));
        Assert.NotSame(a, PixelBufferPool.Rent(Size + 3));   // taken: a new one
        // Far more than the cap returned: retention never exceeds it (other sizes are dropped first).
        for (int i = 0; i < 2 * PixelBufferPool.MaxRetainedBytes / Size + 4; i++) PixelBufferPool.Return(new byte[Size + 5 + i % 3]);
        Assert.True(PixelBufferPool.RetainedBytes <= PixelBufferPool.MaxRetainedBytes);
        PixelBufferPool.Clear();
        Assert.Equal(0, PixelBufferPool.RetainedBytes);
    }
}
