using GflTrainer.Data;
using GflTrainer.Data.Transforms;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Data;

public class FastResizeTests
{
    [Theory]
    [InlineData(1066, 800)]   // the COCO training scale of a 640x480 image (upscale)
    [InlineData(333, 250)]    // odd downscale
    public void FastResize_IsWithinOneGreyLevelOfTheCv2ExactKernel(int newW, int newH)
    {
        using var scope = NewDisposeScope();
        var file = Directory.EnumerateFiles(TestPaths.Fixtures("data", "bccd_mini", "images")).First();
        var img = ImageDecoder.Decode(file);
        var nchw = tensor(img.Pixels, [1, img.Height, img.Width, 3]).permute(0, 3, 1, 2);
        var exact = Resize.Image(nchw, newW, newH).to_type(ScalarType.Int32);
        var fast = Resize.ImageFast(nchw, newW, newH).to_type(ScalarType.Int32);
        Assert.Equal(exact.shape, fast.shape);
        var diff = (exact - fast).abs();
        Assert.True(diff.max().item<int>() <= 1, $"max difference {diff.max().item<int>()}");
        // Mostly identical: the fast kernel is an approximation of the same bilinear formula, not another filter.
        Assert.True(diff.to_type(ScalarType.Float32).mean().item<float>() < 0.5f);
    }

    [Fact]
    public void ResizeBackendFast_IsWiredThroughTheConfig()
    {
        var data = new GflTrainer.Config.DataConfig { ResizeBackend = GflTrainer.Config.ResizeBackend.Fast };
        var t = DataPipelineFactory.EvalTransform(data);
        Assert.True(t.FastResize);
        Assert.False(DataPipelineFactory.EvalTransform(new GflTrainer.Config.DataConfig()).FastResize);
    }
}
