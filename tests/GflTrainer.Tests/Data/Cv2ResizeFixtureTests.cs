using System.Security.Cryptography;
using System.Text.Json;
using GflTrainer.Data;
using GflTrainer.Data.Transforms;
using Xunit;

namespace GflTrainer.Tests.Data;

/// <summary>Resize (and resize + flip) against what OpenCV 4.6's cv2.resize(INTER_LINEAR) / cv2.flip returned
/// (scripts/make_cv2_resize_fixtures.py): every value equal. Cases are read from the fixture file, so new ones in the
/// same format are checked with no code change.</summary>
public class Cv2ResizeFixtureTests
{
    static readonly JsonElement Doc = JsonDocument.Parse(File.ReadAllText(TestPaths.Fixtures("data", "cv2_resize", "cases.json"))).RootElement;

    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var c in Doc.GetProperty("cases").EnumerateArray()) data.Add(c.GetProperty("name").GetString()!);
        return data;
    }

    public static TheoryData<string> Files()
    {
        var data = new TheoryData<string>();
        foreach (var f in Doc.GetProperty("files").EnumerateArray()) data.Add(f.GetProperty("file").GetString()!);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Resize_EqualsCv2(string name)
    {
        var c = Doc.GetProperty("cases").EnumerateArray().Single(e => e.GetProperty("name").GetString() == name);
        var img = new RgbImage(Convert.FromBase64String(c.GetProperty("pixels").GetString()!), c.GetProperty("height").GetInt32(), c.GetProperty("width").GetInt32());
        int w = c.GetProperty("out_width").GetInt32(), h = c.GetProperty("out_height").GetInt32();
        AssertEqualPixels(Convert.FromBase64String(c.GetProperty("expected").GetString()!), Resize.Image(img, w, h).Pixels, w, name);
        AssertEqualPixels(Convert.FromBase64String(c.GetProperty("expected_flipped").GetString()!), Resize.Image(img, w, h, flip: true).Pixels, w, name + " flipped");
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void DecodeAndResize_EqualCv2OnJpegs(string file)
    {
        var f = Doc.GetProperty("files").EnumerateArray().Single(e => e.GetProperty("file").GetString() == file);
        var img = ImageDecoder.Decode(TestPaths.Fixtures("data", "bccd_mini", "images", file));
        Assert.Equal(f.GetProperty("decoded_sha256").GetString(), Sha(img.Pixels));
        foreach (var r in f.GetProperty("resizes").EnumerateArray())
        {
            int w = r.GetProperty("out_width").GetInt32(), h = r.GetProperty("out_height").GetInt32();
            Assert.True(r.GetProperty("sha256").GetString() == Sha(Resize.Image(img, w, h).Pixels), $"{file} -> {w}x{h}");
            Assert.True(r.GetProperty("flipped_sha256").GetString() == Sha(Resize.Image(img, w, h, flip: true).Pixels), $"{file} -> {w}x{h} flipped");
        }
    }

    static string Sha(byte[] b) => Convert.ToHexStringLower(SHA256.HashData(b));

    static void AssertEqualPixels(byte[] expected, byte[] actual, int width, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            if (expected[i] != actual[i])
                Assert.Fail($"{what}: first difference at x={i / 3 % width}, y={i / 3 / width}, channel {i % 3}: expected {expected[i]}, got {actual[i]}");
    }
}
