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
    static ModelConfig Tiny(int depth, HeadType head = HeadType.Gfl) => head == HeadType.Retinanet
        ? new()   // RetinaNet's FPN (P6 from C5), 9 anchors, its test NMS
        {
            Backbone = new BackboneConfig { Depth = depth, BaseChannels = 8, FrozenStages = -1, NormEval = true, Pretrained = null },
            Neck = new NeckConfig { OutChannels = 16, AddExtraConvs = ExtraConvsSource.OnInput },
            Head = new HeadConfig { Type = head, NumClasses = 3, FeatChannels = 16, StackedConvs = 2, OctaveBaseScale = 4, ScalesPerOctave = 3, Ratios = [0.5, 1.0, 2.0] },
            Test = new PostprocessConfig { NmsIou = 0.5 },
        }
        : new()
        {
            Backbone = new BackboneConfig { Depth = depth, BaseChannels = 8, FrozenStages = -1, NormEval = true, Pretrained = null },
            Neck = new NeckConfig { OutChannels = 16 },
            Head = new HeadConfig { Type = head, NumClasses = 3, FeatChannels = 16, StackedConvs = 2, NormGroups = 4 },
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
    [InlineData(18, 1, 96, 128, HeadType.Gfl)]
    [InlineData(18, 3, 160, 64, HeadType.Gfl)]
    [InlineData(50, 1, 128, 96, HeadType.Gfl)]
    [InlineData(50, 3, 64, 160, HeadType.Gfl)]
    [InlineData(18, 3, 160, 64, HeadType.Atss)]
    [InlineData(50, 1, 128, 96, HeadType.Atss)]
    [InlineData(18, 3, 160, 64, HeadType.Retinanet)]
    [InlineData(50, 1, 96, 160, HeadType.Retinanet)]
    public void RawHeadOutputs_MatchGflsForward(int depth, int batch, int height, int width, HeadType head)
    {
        var cfg = Tiny(depth, head);
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
            if (head == HeadType.Atss)
                Compare(expected.Centerness![l], byName[GflOnnxGraph.CenternessOutput(l)], $"centerness p{l + 3}", 1e-4);
            else
                Assert.False(byName.ContainsKey(GflOnnxGraph.CenternessOutput(l)));
        }

        // Decoded as GflPostprocessor decodes every anchor point.
        var (scores, boxes) = GflOnnxReference.Decode(model, expected, cfg, (height, width));
        Compare(scores, byName[GflOnnxGraph.Scores], "scores", 1e-5);
        Compare(boxes, byName[GflOnnxGraph.Boxes], "boxes (px)", 1e-3);
    }

    /// <summary>With the post-processing in the graph (<c>--nms</c>), each image's detections are gfl's own
    /// (<see cref="GflTrainer.Inference.GflPostprocessor"/> on the same head outputs, at scale 1): the same boxes
    /// (1e-3 px), scores (1e-5) and labels in the same order, padded rows after them. ATSS's graph selects on
    /// sigmoid(cls)·sigmoid(centerness), as mmdeploy: its reference is the post-processing of the decoded outputs
    /// (<see cref="GflTrainer.Inference.GflPostprocessor.PredictDecoded"/>).</summary>
    [Theory]
    [InlineData(18, 1, 128, 96, HeadType.Gfl)]
    [InlineData(18, 3, 96, 160, HeadType.Gfl)]
    [InlineData(50, 2, 128, 128, HeadType.Gfl)]
    [InlineData(18, 3, 96, 160, HeadType.Atss)]
    [InlineData(18, 2, 128, 96, HeadType.Retinanet)]
    public void WithNms_DetectionsAreGflsPostprocessing(int depth, int batch, int height, int width, HeadType head)
    {
        var cfg = Tiny(depth, head);
        using var model = Model(cfg, seed: 10 + depth + batch);
        using (no_grad())   // scores spread over (0, 1), so hundreds of pairs pass the 0.05 threshold and NMS has work
        {
            var bias = model.state_dict()[$"bbox_head.{head switch { HeadType.Atss => "atss", HeadType.Retinanet => "retina", _ => "gfl" }}_cls.bias"];
            bias.copy_(randn_like(bias) * 1.5 - 1);
        }
        using var session = new InferenceSession(GflOnnxExporter.Encode(model, cfg, [], rawOutputs: true, nms: true));
        manual_seed(2);
        using var images = randn(batch, 3, height, width);
        var heads = model.forward(images);
        var input = new DenseTensor<float>(images.data<float>().ToArray(), [batch, 3, height, width]);
        using var results = session.Run([NamedOnnxValue.CreateFromTensor(GflOnnxGraph.Input, input)]);
        var dets = results.First(r => r.Name == GflOnnxGraph.Dets).AsTensor<float>();
        var labels = results.First(r => r.Name == GflOnnxGraph.Labels).AsTensor<long>();
        var post = GflTrainer.Inference.GflPostprocessor.FromConfig(cfg);
        var (decodedScores, decodedBoxes) = GflOnnxReference.Decode(model, heads, cfg, (height, width));
        var levelSizes = heads.ClassScores.Select(c => c.shape[2] * c.shape[3]).ToArray();
        int total = 0;
        for (int i = 0; i < batch; i++)
        {
            var expected = head == HeadType.Atss
                ? post.PredictDecoded(decodedScores[i].split(levelSizes, 0), decodedBoxes[i].split(levelSizes, 0), (height, width), 1.0, 1.0)
                : post.PredictSingle(heads.ClassScores.Select(t => t[i]).ToList(), heads.BoxPredictions.Select(t => t[i]).ToList(),
                    (height, width), 1.0, 1.0);
            var (eb, es, el) = expected.ToHost();
            total += es.Length;
            int rows = dets.Dimensions[1];
            Assert.True(rows >= es.Length, $"image {i}: {rows} rows for {es.Length} detections");
            for (int j = 0; j < rows; j++)
            {
                if (j >= es.Length)
                {
                    Assert.Equal(-1, labels[i, j]);
                    Assert.Equal(0f, dets[i, j, 4]);
                    continue;
                }
                Assert.Equal(el[j], labels[i, j]);
                Assert.True(Math.Abs(es[j] - dets[i, j, 4]) <= 1e-5, $"image {i} detection {j}: score {es[j]} vs {dets[i, j, 4]}");
                for (int c = 0; c < 4; c++)
                    Assert.True(Math.Abs(eb[4 * j + c] - dets[i, j, c]) <= 1e-3, $"image {i} detection {j}: box {c}");
            }
        }
        Assert.True(total > 10, $"only {total} detections: the test would not exercise the NMS");
    }

    /// <summary><c>--fp16</c>: float16 weights (half the file), float32 computation and I/O; the outputs move by the
    /// weights' rounding only: scores within 2e-4 (measured 2e-5) and boxes within 0.5 px of the float32 model's (R50, 2 images).</summary>
    [Fact]
    public void HalfWeights_HalveTheFile_AndStayCloseToFloat32()
    {
        var cfg = Tiny(50);
        using var model = Model(cfg, seed: 77);
        var full = GflOnnxExporter.Encode(model, cfg, []);
        var half = GflOnnxExporter.Encode(model, cfg, [], fp16: true);
        Assert.InRange((double)half.Length / full.Length, 0.45, 0.6);
        manual_seed(3);
        using var images = randn(2, 3, 96, 128);
        var (scores, boxes) = GflOnnxReference.Decode(model, model.forward(images), cfg, (96, 128));
        using var session = new InferenceSession(half);
        var input = new DenseTensor<float>(images.data<float>().ToArray(), [2, 3, 96, 128]);
        using var results = session.Run([NamedOnnxValue.CreateFromTensor(GflOnnxGraph.Input, input)]);
        Compare(scores, results.First(r => r.Name == GflOnnxGraph.Scores).AsTensor<float>(), "fp16 scores", 2e-4);
        Compare(boxes, results.First(r => r.Name == GflOnnxGraph.Boxes).AsTensor<float>(), "fp16 boxes (px)", 0.5);
    }

    /// <summary><c>gfl predict --onnx</c>: the exported model in ONNX Runtime, with and without the post-processing in
    /// the graph, finds on every validation image the detections the checkpoint finds (same count and classes, boxes
    /// and scores to 1e-3).</summary>
    [Fact]
    public void PredictWithOnnx_FindsTheCheckpointsDetections()
    {
        var root = Directory.CreateTempSubdirectory("gfl-onnx-predict").FullName;
        var (cfg, checkpoint) = TrainTiny(root, epochs: 2);
        var images = Path.Combine(Path.GetDirectoryName(Path.GetDirectoryName(
            System.Text.RegularExpressions.Regex.Match(File.ReadAllText(cfg), @"ann_file: (\S+instances_val\.json)").Groups[1].Value)!)!, "images", "val");
        var runs = new Dictionary<string, string>();
        foreach (var (name, nms) in new[] { ("decoded", false), ("nms", true) })
        {
            var model = Path.Combine(root, name + ".onnx");
            ExportRun.Execute(new ExportRequest(checkpoint, null, ["model.test.score_thr=0.01"], model, Nms: nms), Serilog.Core.Logger.None);
            runs[name] = model;
        }
        string Predict(string name, string? onnx)
        {
            var dir = Path.Combine(root, "pred_" + name);
            GflTrainer.Inference.PredictRun.Execute(new GflTrainer.Inference.PredictRequest(checkpoint, images, dir, 0.01,
                Overrides: ["model.test.score_thr=0.01"], Onnx: onnx), Serilog.Core.Logger.None);
            return dir;
        }
        var reference = Predict("checkpoint", null);
        int total = 0;
        foreach (var (name, model) in runs)
        {
            var dir = Predict(name, model);
            foreach (var file in Directory.GetFiles(reference, "*.json"))
            {
                var a = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(file))!["detections"]!.AsArray();
                var b = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(dir, Path.GetFileName(file))))!["detections"]!.AsArray();
                Assert.True(a.Count == b.Count, $"{name} {Path.GetFileName(file)}: {b.Count} detections, the checkpoint {a.Count}");
                total += a.Count;
                for (int i = 0; i < a.Count; i++)
                {
                    Assert.Equal(a[i]!["category_id"]!.GetValue<long>(), b[i]!["category_id"]!.GetValue<long>());
                    Assert.True(Math.Abs(a[i]!["score"]!.GetValue<double>() - b[i]!["score"]!.GetValue<double>()) <= 1e-3);
                    for (int c = 0; c < 4; c++)
                        Assert.True(Math.Abs(a[i]!["bbox_xyxy"]![c]!.GetValue<double>() - b[i]!["bbox_xyxy"]![c]!.GetValue<double>()) <= 1e-3,
                            $"{name} {Path.GetFileName(file)} detection {i}");
                }
            }
        }
        Assert.True(total > 0, "no detections to compare");
    }

    /// <summary><c>gfl eval --onnx</c>: the COCO metrics of the exported model in ONNX Runtime equal the checkpoint's
    /// (every one of the 12 numbers to 1e-4, the issue's tolerance), with the post-processing outside the graph (the
    /// config's split) and inside it (--annotations/--images, no config).</summary>
    [Fact]
    public void EvalWithOnnx_GivesTheCheckpointsMetrics()
    {
        var root = Directory.CreateTempSubdirectory("gfl-onnx-eval").FullName;
        // Long enough for the tiny model to find shapes (AP50 > 0), so that there is something to compare.
        var (cfg, checkpoint) = TrainTiny(root, epochs: 10, "train.optimizer.lr=0.02", "train.schedule.steps=[8]");
        string[] low = ["model.test.score_thr=0.01"];
        var expected = GflTrainer.Inference.EvalRun.Execute(new GflTrainer.Inference.EvalRequest(checkpoint, null, low,
            OutDir: Path.Combine(root, "eval_checkpoint")), Serilog.Core.Logger.None);
        Assert.True(expected.Stats[1] > 0.05, $"the tiny model finds almost nothing (AP50 {expected.Stats[1]:F3}): the comparison would be empty");
        var ann = System.Text.RegularExpressions.Regex.Match(File.ReadAllText(cfg), @"ann_file: (\S+instances_val\.json)").Groups[1].Value;
        var images = Path.Combine(Path.GetDirectoryName(Path.GetDirectoryName(ann))!, "images");   // TinyConfig's img_prefix
        foreach (var nms in new[] { false, true })
        {
            var model = Path.Combine(root, nms ? "nms.onnx" : "decoded.onnx");
            ExportRun.Execute(new ExportRequest(checkpoint, null, low, model, Nms: nms), Serilog.Core.Logger.None);
            var request = nms
                ? new GflTrainer.Inference.EvalRequest("", null, [], Onnx: model, Annotations: ann,
                    Images: images)
                : new GflTrainer.Inference.EvalRequest("", cfg, [], Onnx: model);
            var actual = GflTrainer.Inference.EvalRun.Execute(request, Serilog.Core.Logger.None);
            for (int i = 0; i < expected.Stats.Count; i++)
                Assert.True(Math.Abs(expected.Stats[i] - actual.Stats[i]) <= 1e-4,
                    $"{Path.GetFileName(model)} stat {i}: {actual.Stats[i]:F5}, the checkpoint {expected.Stats[i]:F5}");
        }
    }

    /// <summary>The baseline heads end to end: training logs the head's own losses and learns (AP50 above chance), the
    /// checkpoint evaluates, and its export in ONNX Runtime gives the checkpoint's metrics. RetinaNet's to 1e-4; ATSS's
    /// within 0.01 (measured: equal), since the graph, as mmdeploy, applies score_thr and nms_pre to
    /// sigmoid(cls)·sigmoid(centerness) where mmdetection applies them to sigmoid(cls) before the product.</summary>
    [Theory]
    [InlineData(HeadType.Atss, "loss_centerness")]
    [InlineData(HeadType.Retinanet, "loss_bbox")]
    public void BaselineHead_TrainsEvaluatesAndExports(HeadType head, string ownTerm)
    {
        var root = Directory.CreateTempSubdirectory("gfl-" + head).FullName;
        // RetinaNet's towers have no normalisation: the tiny model needs mmdetection's gradient clipping at this lr.
        var (cfg, checkpoint) = TrainTiny(root, epochs: 10, [.. HeadOverrides(head), "train.optimizer.lr=0.02", "train.schedule.steps=[8]",
            .. head == HeadType.Retinanet ? new[] { "train.grad_clip.max_norm=35" } : []]);
        var log = File.ReadAllText(Path.Combine(root, "run", "log.jsonl"));
        Assert.Contains(ownTerm, log);
        Assert.DoesNotContain("loss_dfl", log);
        if (head == HeadType.Retinanet) Assert.DoesNotContain("loss_centerness", log);
        string[] low = ["model.test.score_thr=0.01"];
        var expected = GflTrainer.Inference.EvalRun.Execute(new GflTrainer.Inference.EvalRequest(checkpoint, null, low,
            OutDir: Path.Combine(root, "eval_checkpoint")), Serilog.Core.Logger.None);
        Assert.True(expected.Stats[1] > 0.05, $"the tiny {head} model finds almost nothing (AP50 {expected.Stats[1]:F3})");
        var model = Path.Combine(root, "model.onnx");
        ExportRun.Execute(new ExportRequest(checkpoint, null, low, model), Serilog.Core.Logger.None);
        var actual = GflTrainer.Inference.EvalRun.Execute(new GflTrainer.Inference.EvalRequest("", cfg, [.. HeadOverrides(head), .. low], Onnx: model),
            Serilog.Core.Logger.None);
        double tolerance = head == HeadType.Atss ? 0.01 : 1e-4;
        for (int i = 0; i < expected.Stats.Count; i++)
            Assert.True(Math.Abs(expected.Stats[i] - actual.Stats[i]) <= tolerance,
                $"stat {i}: {actual.Stats[i]:F5}, the checkpoint {expected.Stats[i]:F5}");
    }

    /// <summary>runtime.channels_last changes the memory layout, not the model: a checkpoint trained that way exports to
    /// the same ONNX bytes whether the export converts the weights to NHWC or not (the initializers are written in
    /// NCHW order either way).</summary>
    [Fact]
    public void A_channels_last_run_exports_byte_identical_models_in_either_layout()
    {
        var root = Directory.CreateTempSubdirectory("gfl-cl-export").FullName;
        var (_, checkpoint) = TrainTiny(root, epochs: 1, "runtime.channels_last=true");
        var nhwc = Path.Combine(root, "nhwc.onnx");
        var nchw = Path.Combine(root, "nchw.onnx");
        ExportRun.Execute(new ExportRequest(checkpoint, null, ["runtime.channels_last=true"], nhwc), Serilog.Core.Logger.None);
        ExportRun.Execute(new ExportRequest(checkpoint, null, ["runtime.channels_last=false"], nchw), Serilog.Core.Logger.None);
        Assert.True(File.ReadAllBytes(nhwc).AsSpan().SequenceEqual(File.ReadAllBytes(nchw)), "the two exports differ");
    }

    /// <summary>The --set overrides that give the tiny config <paramref name="head"/> (RetinaNet: its anchors and FPN).</summary>
    static string[] HeadOverrides(HeadType head) => head == HeadType.Retinanet
        ? ["model.head.type=retinanet", "model.head.octave_base_scale=4", "model.head.scales_per_octave=3", "model.head.ratios=[0.5,1.0,2.0]",
           "model.neck.add_extra_convs=on_input", "model.test.nms_iou=0.5"]
        : [$"model.head.type={head.ToString().ToLowerInvariant()}"];

    /// <summary>The tiny training run of <see cref="GflTrainer.Tests.Training.TrainRunTests.TinyConfig"/>: its config and
    /// the path of its <c>last</c> checkpoint.</summary>
    static (string Config, string Checkpoint) TrainTiny(string root, int epochs, params string[] overrides)
    {
        var cfg = GflTrainer.Tests.Training.TrainRunTests.TinyConfig(root, epochs);
        var work = Path.Combine(root, "run");
        GflTrainer.Training.TrainRun.Execute(new GflTrainer.Training.TrainRequest(cfg, ["train.eval_interval=0", .. overrides], work),
            Serilog.Core.Logger.None, null, CancellationToken.None);
        return (cfg, Path.Combine(work, "checkpoints", "last"));
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
    [Theory]
    [InlineData(false, HeadType.Gfl)]
    [InlineData(true, HeadType.Gfl)]
    [InlineData(true, HeadType.Atss)]
    [InlineData(false, HeadType.Retinanet)]
    public void Export_OfATrainedCheckpoint_PassesTheOnnxChecker_AndReproducesItsSample(bool nms, HeadType head)
    {
        var root = Directory.CreateTempSubdirectory("gfl-export").FullName;
        var (_, checkpoint) = TrainTiny(root, epochs: 1, HeadOverrides(head));
        var onnxFile = Path.Combine(root, "out", "tiny.onnx");
        var r = ExportRun.Execute(new ExportRequest(checkpoint, null, ["model.test.score_thr=0.01"], onnxFile,
            Nms: nms), Serilog.Core.Logger.None);
        Assert.Equal(onnxFile + ".sample.safetensors", r.Sample);

        using var session = new InferenceSession(onnxFile);
        var meta = session.ModelMetadata.CustomMetadataMap;
        Assert.Equal("[\"rectangle\",\"ellipse\",\"triangle\"]", meta["classes"]);
        Assert.Equal("[96,96]", meta["img_scale"]);
        Assert.Matches("^[0-9a-f]{64}$", meta["source_sha256"]);
        Assert.Equal(head.ToString().ToLowerInvariant(), meta["head"]);
        using var sample = GflTrainer.Checkpoints.Safetensors.Read(r.Sample);
        var images = sample.Tensors[GflOnnxGraph.Input];
        var input = new DenseTensor<float>(images.data<float>().ToArray(), images.shape.Select(d => (int)d).ToArray());
        using var results = session.Run([NamedOnnxValue.CreateFromTensor(GflOnnxGraph.Input, input)]);
        if (nms)
        {
            var dets = results.First(x => x.Name == GflOnnxGraph.Dets).AsTensor<float>();
            Assert.True(dets.Dimensions[1] > 0, "no detections in the sample: the NMS path is not exercised");
            Compare(sample.Tensors[GflOnnxGraph.Dets], dets, "sample dets", 1e-3);
            Assert.Equal(sample.Tensors[GflOnnxGraph.Labels].data<long>().ToArray(), results.First(x => x.Name == GflOnnxGraph.Labels).AsTensor<long>().ToArray());
        }
        else
        {
            var byName = results.ToDictionary(x => x.Name, x => x.AsTensor<float>());
            Compare(sample.Tensors[GflOnnxGraph.Scores], byName[GflOnnxGraph.Scores], "sample scores", 1e-5);
            Compare(sample.Tensors[GflOnnxGraph.Boxes], byName[GflOnnxGraph.Boxes], "sample boxes", 1e-3);
        }

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

        // ONNX Runtime's Node.js binding reproduces the sample too: the artefact checked with no .NET code of ours.
        var script = Path.Combine(TestPaths.RepoRoot(), "scripts", "onnx-node");
        if (!Directory.Exists(Path.Combine(script, "node_modules", "onnxruntime-node")))
            throw new Xunit.Sdk.XunitException($"onnxruntime-node is not installed: cd {script} && npm ci --ignore-scripts (.ci/run does)");
        var node = new System.Diagnostics.ProcessStartInfo("node") { RedirectStandardOutput = true, RedirectStandardError = true };
        node.ArgumentList.Add(Path.Combine(script, "check_sample.mjs"));
        node.ArgumentList.Add(onnxFile);
        using var n = System.Diagnostics.Process.Start(node)!;
        var nodeOut = n.StandardOutput.ReadToEndAsync();
        var nodeErr = n.StandardError.ReadToEndAsync();
        Assert.True(n.WaitForExit(TimeSpan.FromMinutes(2)));
        Assert.True(n.ExitCode == 0, nodeOut.Result + nodeErr.Result);
        Assert.Contains("all outputs equal gfl's sample", nodeOut.Result);
    }

    /// <summary>The sample's input size: a 4:3 image resized as the pipeline would, padded; a "short side" keep-ratio
    /// scale such as (100000, 320) must not give a 100000 px wide input.</summary>
    [Theory]
    [InlineData(1333, 800, 32, 800, 1088)]   // 1067x800 -> 1088x800
    [InlineData(100000, 320, 32, 320, 448)]  // 427x320 -> 448x320
    [InlineData(96, 96, 32, 96, 96)]         // 96x72 -> 96x96
    [InlineData(640, 640, 1, 480, 640)]
    public void SampleSize_IsA4By3ImageResizedAndPadded(int scaleLong, int scaleShort, int divisor, int h, int w) =>
        Assert.Equal((h, w), ExportRun.SampleSize([scaleLong, scaleShort], divisor));
}
