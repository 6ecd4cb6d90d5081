using GflTrainer.Model;
using GflTrainer.Tests.Support;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Model;

public class AnchorGeneratorTests
{
    public static IEnumerable<object[]> Cases => TestPaths.JsonCases("gfl", "anchors");

    [Theory]
    [MemberData(nameof(Cases))]
    public void Anchors_AndValidFlags_MatchMmdetectionExactly(string file)
    {
        using var scope = NewDisposeScope();
        var f = GflFixture.Load("anchors", file);
        var generator = new AnchorGenerator(GflFixture.Ints(f.Params.GetProperty("strides")),
            f.Params.GetProperty("octave_base_scale").GetDouble());
        var sizes = GflFixture.Shapes(f.Inputs.GetProperty("featmap_sizes"));
        var baseAnchors = GflFixture.ToTensors(f.Expected.GetProperty("base_anchors"));
        var levelAnchors = GflFixture.ToTensors(f.Expected.GetProperty("anchors"));
        var grid = generator.GridAnchors(sizes);
        for (var l = 0; l < sizes.Length; l++)
        {
            TensorAssert.Equal(baseAnchors[l], generator.BaseAnchor(l), $"{file} base anchor P{l + 3}");
            TensorAssert.Equal(levelAnchors[l], grid[l], $"{file} anchors P{l + 3}");
        }
        TensorAssert.Equal(f.Output("anchors_concat"), cat(grid.ToList(), 0), $"{file} concatenated");
        Assert.Equal(GflFixture.Longs(f.Expected.GetProperty("num_anchors_per_level")), grid.Select(g => g.shape[0]).ToArray());

        foreach (var validCase in f.Expected.GetProperty("valid_flag_cases").EnumerateArray())
        {
            var pad = GflFixture.Shape(validCase.GetProperty("pad_shape"));
            var flags = GflFixture.ToTensors(validCase.GetProperty("valid_flags"));
            var counts = GflFixture.Longs(validCase.GetProperty("num_valid_per_level"));
            for (var l = 0; l < sizes.Length; l++)
            {
                TensorAssert.Equal(flags[l], generator.ValidFlags(l, sizes[l], pad), $"{file} pad {pad} valid P{l + 3}");
                var (rows, cols) = generator.ValidExtent(l, sizes[l], pad);
                Assert.Equal(counts[l], (long)rows * cols);
            }
        }
    }

    /// <summary>ValidIndex (built from the valid rectangles, no device sync) is exactly the nonzero of the concatenated
    /// valid flags (checked against mmdetection's fixtures above), and Valid's flags are those flags, for one and for nine anchors per location, pads smaller than, equal to and larger than the maps.</summary>
    [Theory]
    [InlineData(1, 800, 1344)]
    [InlineData(9, 800, 1344)]
    [InlineData(1, 131, 77)]
    [InlineData(9, 131, 77)]
    [InlineData(9, 1, 1)]
    public void ValidIndex_equals_the_nonzero_of_the_valid_flags(int anchorsPerLocation, int padH, int padW)
    {
        using var scope = NewDisposeScope();
        var generator = anchorsPerLocation == 1 ? new AnchorGenerator([8, 16, 32, 64, 128], 8)
            : new AnchorGenerator([8, 16, 32, 64, 128], 4, 3, [0.5, 1.0, 2.0]);
        Assert.Equal(anchorsPerLocation, generator.AnchorsPerLocation);
        (int H, int W)[] sizes = [(100, 168), (50, 84), (25, 42), (13, 21), (7, 11)];
        var flags = cat(Enumerable.Range(0, sizes.Length).Select(l => generator.ValidFlags(l, sizes[l], (padH, padW))).ToList(), 0);
        var expected = flags.nonzero().squeeze(1);
        var actual = generator.ValidIndex(sizes, (padH, padW));
        Assert.Equal(int64, actual.dtype);
        TensorAssert.Equal(expected, actual, $"A={anchorsPerLocation} pad {padH}x{padW}");
        // Valid (what the target builders use): the same indices and the flags made from them.
        var (validFlags, validIndex) = generator.Valid(sizes, (padH, padW));
        TensorAssert.Equal(flags, validFlags, $"A={anchorsPerLocation} pad {padH}x{padW} flags");
        TensorAssert.Equal(expected, validIndex, $"A={anchorsPerLocation} pad {padH}x{padW} index");
    }
}
