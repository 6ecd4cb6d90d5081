using System.Text.Json;
using Xunit;
using Xunit.Abstractions;
using GflTrainer.Inference;

namespace GflTrainer.Tests.Inference;

/// <summary>
/// gfl's whole detection path (cv2-exact keep-ratio resize to short side 320, normalise, pad, model, post-processing,
/// rescale to the original pixels) against the plain-PyTorch reference's with the same weights on 4 real BCCD images
/// (Fixtures/parity/bccd_detect: a narrow GFL trained by gfl; reference_detections.json from
/// scripts/reference/make_detect_parity_fixture.py, torch 1.13). Every detection must be matched one to one:
/// same image and category, box corners within 1e-3 px, score within 1e-4; also with runtime.channels_last (NHWC
/// convolutions: other summation orders, the same tolerances).
/// </summary>
public class DetectionParityTests(ITestOutputHelper output)
{
    private sealed record Det(long Image, long Category, double[] Box, double Score);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void BccdImages_SameDetectionsAsTheReference(bool channelsLast)
    {
        var dir = TestPaths.Fixtures("parity", "bccd_detect");
        var outDir = Directory.CreateTempSubdirectory("gfl-detect-parity-").FullName;
        try
        {
            EvalRun.Execute(new EvalRequest(Path.Combine(dir, "model.safetensors"), Path.Combine(dir, "config.yaml"),
                [$"data.val.ann_file={Path.Combine(dir, "instances.json")}", $"data.val.img_prefix={Path.Combine(dir, "images")}/",
                 "data.workers=0", $"runtime.channels_last={(channelsLast ? "true" : "false")}"], OutDir: outDir, Device: "cpu"), Serilog.Core.Logger.None);
            var ours = Read(Path.Combine(outDir, "detections.json"));
            var reference = Read(Path.Combine(dir, "reference_detections.json"));
            output.WriteLine($"{ours.Count} detections (reference {reference.Count}); {reference.Count(d => d.Score >= 0.3)} score >= 0.3");
            Assert.True(reference.Count > 50, "the fixture should hold a real detection set");

            var unmatched = new List<Det>(ours);
            double worstBox = 0, worstScore = 0;
            var missing = new List<string>();
            foreach (var r in reference)
            {
                var match = unmatched.Where(o => o.Image == r.Image && o.Category == r.Category)
                    .MinBy(o => Math.Abs(o.Score - r.Score) + o.Box.Zip(r.Box, (a, b) => Math.Abs(a - b)).Max());
                if (match is null || Math.Abs(match.Score - r.Score) > 1e-4 || match.Box.Zip(r.Box, (a, b) => Math.Abs(a - b)).Max() > 1e-3)
                {
                    missing.Add($"image {r.Image} cat {r.Category} score {r.Score:F6} box [{string.Join(", ", r.Box.Select(v => v.ToString("F3")))}]");
                    continue;
                }
                worstBox = Math.Max(worstBox, match.Box.Zip(r.Box, (a, b) => Math.Abs(a - b)).Max());
                worstScore = Math.Max(worstScore, Math.Abs(match.Score - r.Score));
                unmatched.Remove(match);
            }
            output.WriteLine($"worst box difference {worstBox:G3} px, worst score difference {worstScore:G3}");
            Assert.True(missing.Count == 0, $"{missing.Count} reference detections without a gfl twin, e.g.\n" + string.Join("\n", missing.Take(5)));
            Assert.True(unmatched.Count == 0, $"{unmatched.Count} gfl detections the reference does not have, e.g. " +
                string.Join("; ", unmatched.Take(3).Select(o => $"image {o.Image} cat {o.Category} score {o.Score:F6}")));
        }
        finally { Directory.Delete(outDir, true); }
    }

    private static List<Det> Read(string path)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        return doc.RootElement.EnumerateArray().Select(e =>
        {
            var b = e.GetProperty("bbox").EnumerateArray().Select(v => v.GetDouble()).ToArray();
            return new Det(e.GetProperty("image_id").GetInt64(), e.GetProperty("category_id").GetInt64(),
                [b[0], b[1], b[0] + b[2], b[1] + b[3]], e.GetProperty("score").GetDouble());
        }).ToList();
    }
}
