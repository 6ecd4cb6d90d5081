using GflTrainer.Data;
using GflTrainer.Data.Transforms;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Data;

public class TransformTests
{
    [Theory]
    [InlineData(640, 480, 1067, 800)]    // f = min(1333/640, 800/480) = 5/3; 640·5/3 = 1066.67 -> int(+0.5) = 1067
    [InlineData(480, 640, 800, 1067)]    // portrait: same factor, sides swapped
    [InlineData(2000, 500, 1333, 333)]   // long side binds: f = 0.6665; 500·0.6665 = 333.25 -> 333
    [InlineData(320, 320, 800, 800)]
    public void RescaleSize_FollowsMmcvKeepRatioRule(int w, int h, int expectedW, int expectedH)
    {
        Assert.Equal((expectedW, expectedH), Resize.RescaleSize(w, h, ResizeScale.Coco));
    }

    [Fact]
    public void ResizeBoxes_ScalesPerAxisAndClipsToTheNewImage()
    {
        float sw = 1067f / 640, sh = 800f / 480;
        var boxes = new[] { 10f, 20, 110, 220, 600, 400, 700, 500 };
        Resize.Boxes(boxes, sw, sh, 1067, 800);
        Assert.Equal(10 * 1.6671875f, boxes[0], 4);
        Assert.Equal(20 * 1.6666666f, boxes[1], 4);
        Assert.Equal(110 * 1.6671875f, boxes[2], 4);
        Assert.Equal(220 * 1.6666666f, boxes[3], 4);
        Assert.Equal(1000.3125f, boxes[4], 3);
        Assert.Equal(1067f, boxes[6]);      // 700·1.667 = 1167 clipped to the width
        Assert.Equal(800f, boxes[7]);       // 500·1.667 = 833 clipped to the height
    }

    [Fact]
    public void FlipBoxes_MirrorsAsMmdetection()
    {
        var boxes = new[] { 10f, 20, 30, 40, 0, 0, 100, 5 };
        RandomFlip.Boxes(boxes, 100);
        Assert.Equal(new[] { 70f, 20, 90, 40, 0, 0, 100, 5 }, boxes);
    }

    [Fact]
    public void Pad_RoundsUpToMultipleOf32()
    {
        var pad = new Pad();
        Assert.Equal(1088, pad.Padded(1067));
        Assert.Equal(800, pad.Padded(800));
        Assert.Equal(32, pad.Padded(1));
    }

    static byte[] ResizeGray(byte[,] img, int newW, int newH)
    {
        int h = img.GetLength(0), w = img.GetLength(1);
        var hwc = new byte[h * w * 3];
        for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) for (int c = 0; c < 3; c++) hwc[(y * w + x) * 3 + c] = img[y, x];
        var r = Resize.Image(new RgbImage(hwc, h, w), newW, newH);
        return Enumerable.Range(0, newW * newH).Select(i => r.Pixels[3 * i]).ToArray();
    }

    [Fact]
    public void ResizeImage_Upscale2x_MatchesHandComputedCv2FixedPointBilinear()
    {
        // src = (dst + 0.5)/2 - 0.5. x weights (×2048, clamped at the borders): (2048,0) (1536,512) (512,1536) (2048,0).
        // Horizontal pass: row [0,100] -> [0, 51200, 153600, 204800]; row [200,40] -> [409600, 327680, 163840, 81920].
        // y weights are not clamped: output row 0 mixes row 0 with itself (512, 1536), rows 1, 2 use (1536,512), (512,1536).
        // Vertical pass: (((R0>>4)·b0>>16) + ((R1>>4)·b1>>16) + 2) >> 2, e.g. row 1, col 1:
        // (3200·1536>>16 = 75) + (20480·512>>16 = 160) = 235 -> (235 + 2) >> 2 = 59.
        var outPixels = ResizeGray(new byte[,] { { 0, 100 }, { 200, 40 } }, 4, 4);
        Assert.Equal(new byte[] { 0, 25, 75, 100 }, outPixels[0..4]);
        Assert.Equal(new byte[] { 50, 59, 76, 85 }, outPixels[4..8]);
        Assert.Equal(new byte[] { 150, 126, 79, 55 }, outPixels[8..12]);
        Assert.Equal(new byte[] { 200, 160, 80, 40 }, outPixels[12..16]);
    }

    [Fact]
    public void ResizeImage_Downscale_UsesSameFormulaWithoutAntialias()
    {
        // 3 -> 2 columns: scale 1.5, src x = 0.25 and 1.75: weights (1536,512), (512,1536):
        // [0·1536 + 100·512 = 51200 -> (3200·2048>>16 + 2)>>2 = 25, 358400 -> (700 + 2)>>2 = 175]
        // (an antialiased filter would also mix in the neighbours).
        Assert.Equal(new byte[] { 25, 175 }, ResizeGray(new byte[,] { { 0, 100, 200 } }, 2, 1));
        // 4 -> 2 in x only: src x = 0.5 and 2.5, weights (1024,1024): (30720>>4)·2048>>16 = 60 -> 15; 81920 -> 40.
        Assert.Equal(new byte[] { 15, 40 }, ResizeGray(new byte[,] { { 10, 20, 30, 50 } }, 2, 1));
    }

    [Fact]
    public void ResizeImage_Exact2xDownscale_IsCv2AreaAverageRoundingHalfUp()
    {
        // cv2 turns INTER_LINEAR into INTER_AREA for exactly 2x in both axes: (a + b + c + d + 2) >> 2.
        // Block sums 2 and 7 give 1 and 2 (a float mean 0.5 would round to 0).
        var px = ResizeGray(new byte[,] { { 0, 0, 1, 2 }, { 0, 2, 2, 2 } }, 2, 1);
        Assert.Equal(new byte[] { 1, 2 }, px);
    }

    [Fact]
    public void Normalize_SubtractsMeanAndDividesByStdPerRgbChannel()
    {
        using var scope = NewDisposeScope();
        var img = tensor(new byte[] { 255, 0, 124 }, [3, 1, 1]);
        var n = new Normalize().Apply(img).data<float>().ToArray();
        Assert.Equal((255 - 123.675f) / 58.395f, n[0], 5);
        Assert.Equal((0 - 116.28f) / 57.12f, n[1], 5);
        Assert.Equal((124 - 103.53f) / 57.375f, n[2], 5);
    }

    internal static RgbImage Gradient(int w, int h)
    {
        var px = new byte[w * h * 3];
        for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
        {
            px[(y * w + x) * 3] = (byte)(x * 255 / (w - 1));
            px[(y * w + x) * 3 + 1] = (byte)(y * 255 / (h - 1));
            px[(y * w + x) * 3 + 2] = 7;
        }
        return new RgbImage(px, h, w);
    }

    [Fact]
    public void DetectionTransform_ResizesFlipsAndRecordsMeta()
    {
        var entry = new DatasetEntry(42, "x.jpg", 40, 30, [4, 3, 14, 13], [2], [0, 0, 8, 6]);
        var t = new DetectionTransform(new MultiScale([new ResizeScale(80, 60)]), flipProbability: 1.0);
        var s = t.Apply(Gradient(40, 30), entry, new Random(0));
        Assert.Equal((80, 60), (s.Width, s.Height));
        Assert.Equal(new[] { 80 - 28f, 6, 80 - 8f, 26 }, s.Boxes);    // ×2, then x1' = W − x2
        Assert.Equal(new[] { 80 - 16f, 0, 80f, 12 }, s.IgnoredBoxes);
        Assert.Equal(new ImageMeta(42, "x.jpg", 30, 40, 60, 80, 60, 80, 2f, 2f, true), s.Meta);
        // Flipped: the red ramp now falls from left to right.
        Assert.Equal(255, s.Pixels[0]);
        Assert.Equal(0, s.Pixels[(79) * 3]);
        Assert.Equal(7, s.Pixels[2]);
    }

    [Fact]
    public void Collate_PadsToMultipleOf32WithZerosAfterNormalisation()
    {
        using var scope = NewDisposeScope();
        var eval = DetectionTransform.Eval(new ResizeScale(50, 40));
        var a = eval.Apply(Gradient(50, 40), new DatasetEntry(1, "a", 50, 40, [1, 1, 5, 5], [0], []), new Random(0));
        // 20x40 -> f = min(50/40, 40/20) = 1.25 -> 25x50, padded to 32x64.
        var b = eval.Apply(Gradient(20, 40), new DatasetEntry(2, "b", 20, 40, [], [], []), new Random(0));
        using var batch = new BatchCollator(new Normalize(), new Pad(), CPU).Collate([a, b]);
        Assert.Equal(new long[] { 2, 3, 64, 64 }, batch.Images.shape);
        Assert.Equal((64, 64), (batch.Metas[0].PadHeight, batch.Metas[0].PadWidth));
        Assert.Equal((64, 32), (batch.Metas[1].PadHeight, batch.Metas[1].PadWidth));
        Assert.False(batch.Metas[0].Flipped);
        Assert.Equal(0f, batch.Images[0, .., 40..].abs().sum().item<float>());
        Assert.Equal(0f, batch.Images[1, .., .., 25..].abs().sum().item<float>());
        Assert.Equal((7 - 103.53f) / 57.375f, batch.Images[1, 2, 5, 5].item<float>(), 5);
        Assert.Equal(new long[] { 1, 4 }, batch.GtBoxes[0].shape);
        Assert.Equal(new long[] { 0, 4 }, batch.GtBoxes[1].shape);
        Assert.Equal(ScalarType.Int64, batch.GtLabels[0].dtype);
        Assert.Equal(new long[] { 0, 4 }, batch.IgnoredBoxes[0].shape);
    }

    [Fact]
    public void MultiScale_RangeDrawsLongAndShortEdgesInsideTheRange()
    {
        var ms = new MultiScale([new ResizeScale(1333, 640), new ResizeScale(1333, 800)], MultiScaleMode.Range);
        var rng = new Random(3);
        var picks = Enumerable.Range(0, 200).Select(_ => ms.Pick(rng)).ToList();
        Assert.All(picks, p => Assert.Equal(1333, p.LongEdge));
        Assert.All(picks, p => Assert.InRange(p.ShortEdge, 640, 800));
        Assert.True(picks.Select(p => p.ShortEdge).Distinct().Count() > 50);
        var values = new MultiScale([new ResizeScale(1333, 640), new ResizeScale(1333, 800)]);
        Assert.Equal(new[] { 640, 800 }, Enumerable.Range(0, 100).Select(_ => values.Pick(rng).ShortEdge).Distinct().Order());
    }
}
