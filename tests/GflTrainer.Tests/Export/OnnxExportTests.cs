using GflTrainer.Config;
using GflTrainer.Export;
using GflTrainer.Model;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Export;

/// <summary>The exported graph, run in ONNX Runtime (CPU), against gfl's own forward on the same inputs.</summary>
[Collection("training")]
public sealed class OnnxExportTests
{
    static ModelConfig Tiny(int depth) => new()
    {
        Backbone = new BackboneConfig { Depth = depth, BaseChannels = 8, FrozenStages = -1, NormEval = true, Pretrained = null },
        Neck = new NeckConfig { OutChannels = 16 },
        Head = new HeadConfig { NumClasses = 3, FeatChannels = 16, StackedConvs = 2, NormGroups = 4 },
    };

    /// <summary>Random weights, and BatchNorm statistics and GroupNorm affines away from their identity defaults, so a
    /// folding or normalisation mistake shows.</summary>
    static GflDetector Model(ModelConfig cfg, int seed)
    {
        manual_seed(seed);
        var model = DetectorFactory.CreateDetector(cfg);
        using (no_grad())
            foreach (var (name, t) in model.state_dict().Where(kv => kv.Value.is_floating_point()))
            {
                if (name.EndsWith("running_var")) t.copy_(rand_like(t) + 0.5);
                else if (name.EndsWith("running_mean") || name.Contains(".gn.") || name.Contains("bn") || name.EndsWith("scale"))
                    t.copy_(randn_like(t) * 0.2 + (name.EndsWith("weight") || name.EndsWith("scale") ? 1 : 0));
            }
        model.eval();
        return model;
    }

    [Theory]
    [InlineData(18, 1, 96, 128)]
    [InlineData(18, 3, 160, 64)]
    [InlineData(50, 1, 128, 96)]
    [InlineData(50, 3, 64, 160)]
    public void RawHeadOutputs_MatchGflsForward(int depth, int batch, int height, int width)
    {
        var cfg = Tiny(depth);
        using var model = Model(cfg, seed: depth + batch);
        var bytes = GflOnnxExporter.Encode(model, cfg, [new("classes", "a,b,c")], rawOutputs: true);
        using var session = new InferenceSession(bytes);
        Assert.Equal("classes", Assert.Single(session.ModelMetadata.CustomMetadataMap).Key);

        manual_seed(1);
        using var images = randn(batch, 3, height, width);
        var expected = model.forward(images);
        var input = new DenseTensor<float>(images.data<float>().ToArray(), [batch, 3, height, width]);
        using var results = session.Run([NamedOnnxValue.CreateFromTensor(GflOnnxGraph.Input, input)]);
        var byName = results.ToDictionary(r => r.Name, r => r.AsTensor<float>());
        for (int l = 0; l < expected.ClassScores.Count; l++)
        {
            Compare(expected.ClassScores[l], byName[GflOnnxGraph.ClsOutput(l)], $"cls p{l + 3}", 1e-4);
            Compare(expected.BoxPredictions[l], byName[GflOnnxGraph.RegOutput(l)], $"reg p{l + 3}", 1e-4);
        }

        // Decoded as GflPostprocessor decodes every anchor point.
        var (scores, boxes) = GflOnnxReference.Decode(model, expected, cfg.Head.RegMax, (height, width));
        Compare(scores, byName[GflOnnxGraph.Scores], "scores", 1e-5);
        Compare(boxes, byName[GflOnnxGraph.Boxes], "boxes (px)", 1e-3);
    }

    static void Compare(TorchSharp.torch.Tensor expected, Microsoft.ML.OnnxRuntime.Tensors.Tensor<float> actual, string what, double tolerance)
    {
        Assert.Equal(expected.shape, actual.Dimensions.ToArray().Select(d => (long)d).ToArray());
        var e = expected.data<float>().ToArray();
        var a = actual.ToArray();
        double worst = e.Zip(a, (x, y) => (double)Math.Abs(x - y)).Max();
        Assert.True(worst <= tolerance, $"{what}: largest difference {worst:G3}");
    }

    /// <summary><c>gfl export</c> of a trained checkpoint: the file passes the official <c>onnx</c> 1.12 checker with full
    /// strict shape inference (Debian's python3-onnx, installed by .ci/run), carries the metadata, and ONNX Runtime
    /// reproduces the sample outputs written beside it from the sample input.</summary>
    [Fact]
    public void Export_OfATrainedCheckpoint_PassesTheOnnxChecker_AndReproducesItsSample()
    {
        var root = Directory.CreateTempSubdirectory("gfl-export").FullName;
        var cfg = GflTrainer.Tests.Training.TrainRunTests.TinyConfig(root, epochs: 1);
        var work = Path.Combine(root, "run");
        GflTrainer.Training.TrainRun.Execute(new GflTrainer.Training.TrainRequest(cfg, ["train.eval_interval=0"], work),
            Serilog.Core.Logger.None, null, CancellationToken.None);
        var onnxFile = Path.Combine(root, "out", "tiny.onnx");
        var r = ExportRun.Execute(new ExportRequest(Path.Combine(work, "checkpoints", "last"), null, [], onnxFile), Serilog.Core.Logger.None);
        Assert.Equal(onnxFile + ".sample.safetensors", r.Sample);

        using var session = new InferenceSession(onnxFile);
        var meta = session.ModelMetadata.CustomMetadataMap;
        Assert.Equal("[\"rectangle\",\"ellipse\",\"triangle\"]", meta["classes"]);
        Assert.Equal("[96,96]", meta["img_scale"]);
        Assert.Matches("^[0-9a-f]{64}$", meta["source_sha256"]);
        using var sample = GflTrainer.Checkpoints.Safetensors.Read(r.Sample);
        var images = sample.Tensors[GflOnnxGraph.Input];
        var input = new DenseTensor<float>(images.data<float>().ToArray(), images.shape.Select(d => (int)d).ToArray());
        using var results = session.Run([NamedOnnxValue.CreateFromTensor(GflOnnxGraph.Input, input)]);
        var byName = results.ToDictionary(x => x.Name, x => x.AsTensor<float>());
        Compare(sample.Tensors[GflOnnxGraph.Scores], byName[GflOnnxGraph.Scores], "sample scores", 1e-5);
        Compare(sample.Tensors[GflOnnxGraph.Boxes], byName[GflOnnxGraph.Boxes], "sample boxes", 1e-3);

        // The reference checker (what mmdeploy and TensorRT users run first).
        const string python = "/usr/bin/python3";
        if (!File.Exists(python)) throw new Xunit.Sdk.XunitException("/usr/bin/python3 not found: apt-get install python3-onnx (.ci/run does)");
        var psi = new System.Diagnostics.ProcessStartInfo(python) { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add("import onnx, sys; m = onnx.load(sys.argv[1]); onnx.checker.check_model(m, full_check=True); " +
            "onnx.shape_inference.infer_shapes(m, strict_mode=True); print('checked', m.ir_version, m.opset_import[0].version)");
        psi.ArgumentList.Add(onnxFile);
        using var p = System.Diagnostics.Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(TimeSpan.FromMinutes(2)));
        Assert.True(p.ExitCode == 0, stderr.Result.Contains("No module named 'onnx'")
            ? "python3-onnx is not installed: apt-get install python3-onnx (.ci/run does)" : stderr.Result);
        Assert.Equal("checked 8 17", stdout.Result.Trim());
    }
}
