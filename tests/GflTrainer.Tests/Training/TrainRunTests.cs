using System.Diagnostics;
using GflTrainer.Checkpoints;
using GflTrainer.Data;
using GflTrainer.Tests.Support;
using GflTrainer.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Training;

/// <summary>End-to-end training runs on a tiny synthetic dataset and a tiny network (seconds on CPU).</summary>
[Collection("training")]   // runs serially: these are the heaviest tests
public class TrainRunTests
{
    /// <summary>A run with its log discarded (the files in the work directory are still written).</summary>
    private static TrainResult Train(TrainRequest request, CancellationToken cancel,
        Action<IReadOnlyList<(string Name, TorchSharp.torch.Tensor Param)>>? afterBackward = null) =>
        TrainRun.Execute(request, Serilog.Core.Logger.None, null, cancel, new TrainTestHooks(afterBackward));

    private static readonly Lazy<string> Dataset = new(() =>
    {
        var dir = Path.Combine(Path.GetTempPath(), "gfl-test-synth-v1");
        if (!File.Exists(Path.Combine(dir, "annotations", "instances_val.json")))
            SyntheticShapes.Write(dir, new SyntheticShapesOptions { Seed = 3, TrainImages = 12, ValImages = 4, ImageSize = 96, MinSide = 20, MaxSide = 60 });
        return dir;
    });

    /// <summary>A config for a ~100k-parameter detector on 96 px images: fast, but every code path of the real one.</summary>
    internal static string TinyConfig(string dir, int epochs = 2, string extra = "")
    {
        var data = Dataset.Value;
        var path = Path.Combine(dir, "tiny.yaml");
        File.WriteAllText(path, $$"""
            model:
              backbone: { depth: 18, frozen_stages: -1, norm_eval: false, base_channels: 8 }
              neck: { out_channels: 16 }
              head: { num_classes: 3, feat_channels: 16, stacked_convs: 1, norm_groups: 4 }
            data:
              train: { ann_file: {{data}}/annotations/instances_train.json, img_prefix: {{data}}/images/ }
              val: { ann_file: {{data}}/annotations/instances_val.json, img_prefix: {{data}}/images/ }
              img_scale: [96, 96]
              batch_size: 2
              val_batch_size: 2
              workers: 1
            train:
              epochs: {{epochs}}
              seed: 7
              log_interval: 2
              optimizer: { lr: 0.01 }
              schedule: { warmup_iters: 4, steps: [1] }
              eval_interval: 1
            {{extra}}
            """);
        return path;
    }

    private static Dictionary<string, float[]> Weights(string checkpointDir)
    {
        using var ck = CheckpointStore.Load(checkpointDir, loadOptimizer: false);
        return ck.Model.Tensors.Where(kv => kv.Value.dtype == ScalarType.Float32)
            .ToDictionary(kv => kv.Key, kv => kv.Value.data<float>().ToArray());
    }

    private static void AssertBitIdentical(string a, string b)
    {
        var wa = Weights(a); var wb = Weights(b);
        Assert.Equal(wa.Keys.OrderBy(k => k), wb.Keys.OrderBy(k => k));
        foreach (var (k, v) in wa) Assert.True(v.SequenceEqual(wb[k]), $"tensor {k} differs");
    }

    /// <param name="channelsLast">runtime.channels_last: the NHWC weights and gradients of the flat buffers are saved and
    /// restored exactly as well.</param>
    /// <param name="lossReads">runtime.loss_reads: with log_interval the interrupt first reads the steps not read yet.</param>
    [Theory]
    [InlineData(false, "step")]
    [InlineData(true, "step")]
    [InlineData(false, "log_interval")]
    public void InterruptAndResume_EndsBitIdenticalToAnUninterruptedRun(bool channelsLast, string lossReads)
    {
        var root = Directory.CreateTempSubdirectory("gfl-train").FullName;
        var cfg = TinyConfig(root);
        string[] overrides = channelsLast ? ["runtime.channels_last=true"] : [];
        overrides = [.. overrides, $"runtime.loss_reads={lossReads}"];
        var full = Train(new TrainRequest(cfg, overrides, Path.Combine(root, "full")), CancellationToken.None);
        Assert.Equal(12, full.Iterations);   // 12 images / batch 2 x 2 epochs
        Assert.NotNull(full.LastAp);

        // Interrupted a few iterations into epoch 1 (what SIGINT does), then resumed. Where the cancel lands depends on
        // timing: if the run already reached the end-of-epoch checkpoint and evaluation, the last checkpoint is the
        // epoch's (also correct, but not what this test is about), so that attempt is repeated in a fresh folder.
        string work = "";
        bool interruptedMidEpoch = false;
        for (int attempt = 0; attempt < 4 && !interruptedMidEpoch; attempt++)
        {
            work = Path.Combine(root, $"resumed{attempt}");
            using var cts = new CancellationTokenSource();
            var log = Path.Combine(work, "log.jsonl");
            var watcher = Task.Run(async () =>
            {
                while (!cts.IsCancellationRequested)
                {
                    if (File.Exists(log) && File.ReadAllLines(log).Length >= 1) { cts.Cancel(); break; }
                    await Task.Delay(2);
                }
            });
            Assert.Throws<OperationCanceledException>(() => Train(new TrainRequest(cfg, overrides, work), cts.Token));
            watcher.Wait();
            using var ck = CheckpointStore.Load(Path.Combine(work, "checkpoints", "last"), loadOptimizer: false);
            if (ck.Meta.Reason == "epoch") continue;
            Assert.Equal("interrupt", ck.Meta.Reason);
            Assert.InRange(ck.Meta.Iteration, 2, 11);
            interruptedMidEpoch = true;
        }
        Assert.True(interruptedMidEpoch, "every attempt was interrupted at an epoch boundary");
        var resumed = Train(new TrainRequest(cfg, overrides, work, Resume: ""), CancellationToken.None);
        Assert.Equal(12, resumed.Iterations);
        AssertBitIdentical(Path.Combine(root, "full", "checkpoints", "last"), Path.Combine(work, "checkpoints", "last"));
        // Logs and artefacts a user expects.
        foreach (var f in new[] { "config.yaml", "train.log", "log.jsonl", "metrics.jsonl", "plots/loss.png", "plots/ap.png", "checkpoints/best/model.safetensors", "checkpoints/epoch_2/meta.json" })
            Assert.True(File.Exists(Path.Combine(work, f)), f + " missing");
        var iters = File.ReadAllLines(Path.Combine(work, "log.jsonl"))
            .Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement.GetProperty("iter").GetInt64()).ToList();
        Assert.Equal(iters.Distinct().Count(), iters.Count);   // redone iterations are not logged twice
        Assert.Equal(2, File.ReadAllLines(Path.Combine(work, "metrics.jsonl")).Length);
    }

    /// <summary>runtime.targets: loader (the default on CUDA): the loader's two workers build the targets ahead of each
    /// step, on other threads, and the run ends exactly where a run building them inside the step (the CPU's auto) ends.</summary>
    [Fact]
    public void TargetsBuiltByTheLoader_TrainBitIdenticalToTargetsBuiltInTheStep()
    {
        var root = Directory.CreateTempSubdirectory("gfl-train").FullName;
        var cfg = TinyConfig(root, epochs: 1);
        string[] common = ["data.workers=2", "train.eval_interval=0"];
        var ahead = Train(new TrainRequest(cfg, [.. common, "runtime.targets=loader"], Path.Combine(root, "loader")), CancellationToken.None);
        var inStep = Train(new TrainRequest(cfg, common, Path.Combine(root, "step")), CancellationToken.None);
        Assert.Equal(6, ahead.Iterations);
        Assert.Equal(ahead.Iterations, inStep.Iterations);
        AssertBitIdentical(Path.Combine(root, "loader", "checkpoints", "last"), Path.Combine(root, "step", "checkpoints", "last"));
    }

    /// <summary>runtime.loss_reads: log_interval (the CUDA default), forced on the CPU: the steps read their
    /// losses every log_interval steps, and the run ends bit-identical to one that reads every step, with the same
    /// log lines (iterations, losses, learning rates).</summary>
    /// <param name="amp">train.amp: with fp16 the loss scale lives on the device, and ends the same.</param>
    [Theory]
    [InlineData("off")]
    [InlineData("fp16")]
    public void DeferredLossReads_TrainBitIdentical_AndLogTheSameLosses(string amp)
    {
        var root = Directory.CreateTempSubdirectory("gfl-train").FullName;
        var cfg = TinyConfig(root, epochs: 2, extra: "  grad_clip: { max_norm: 1000 }");
        string[] common = ["train.eval_interval=0", "train.log_interval=4", $"train.amp={amp}"];
        var deferred = Train(new TrainRequest(cfg, [.. common, "runtime.loss_reads=log_interval"], Path.Combine(root, "deferred")), CancellationToken.None);
        var reads = Train(new TrainRequest(cfg, [.. common, "runtime.loss_reads=step"], Path.Combine(root, "step")), CancellationToken.None);
        Assert.Equal(12, deferred.Iterations);
        Assert.Equal(reads.Iterations, deferred.Iterations);
        AssertBitIdentical(Path.Combine(root, "step", "checkpoints", "last"), Path.Combine(root, "deferred", "checkpoints", "last"));
        static List<string> Lines(string work) => File.ReadAllLines(Path.Combine(work, "log.jsonl")).Select(l =>
        {
            var e = System.Text.Json.JsonDocument.Parse(l).RootElement;
            return string.Join(" ", new[] { "epoch", "iter", "iter_in_epoch", "lr", "loss", "loss_cls", "loss_bbox", "loss_dfl" }
                .Select(k => e.TryGetProperty(k, out var v) ? v.GetRawText() : "-"));
        }).ToList();
        var logged = Lines(Path.Combine(root, "deferred"));
        Assert.Equal(Lines(Path.Combine(root, "step")), logged);
        Assert.Equal(4, logged.Count);   // iterations 4, 6 (end of epoch 1), 8, 12
        using var a = CheckpointStore.Load(Path.Combine(root, "step", "checkpoints", "last"), loadOptimizer: false);
        using var b = CheckpointStore.Load(Path.Combine(root, "deferred", "checkpoints", "last"), loadOptimizer: false);
        Assert.Equal((a.Meta.LossScale, a.Meta.LossScaleCleanSteps), (b.Meta.LossScale, b.Meta.LossScaleCleanSteps));
    }

    [Fact]
    public void SigkillAtAnArbitraryMoment_ThenAutoResume_EndsBitIdentical()
    {
        var root = Directory.CreateTempSubdirectory("gfl-kill").FullName;
        var cfg = TinyConfig(root, epochs: 3);
        var full = Train(new TrainRequest(cfg, [], Path.Combine(root, "full")), CancellationToken.None);

        var work = Path.Combine(root, "killed");
        using (var p = GflChild.Start(["train", "--config", cfg, "--work-dir", work]))
        {
            // Kill during epoch 2 (after epoch 1's checkpoints exist, mid-way through later iterations).
            var log = Path.Combine(work, "log.jsonl");
            Assert.True(p.WaitUntil(() => File.Exists(log) && File.ReadAllLines(log).Length >= 5, TimeSpan.FromMinutes(2)),
                "training finished before it could be killed:\n" + p.Output);
            p.Kill();   // SIGKILL
        }
        var store = new CheckpointStore(Path.Combine(work, "checkpoints"));
        Assert.NotNull(store.Find("last"));
        var resumed = Train(new TrainRequest(cfg, [], work, AutoResume: true), CancellationToken.None);
        Assert.Equal(full.Iterations, resumed.Iterations);
        AssertBitIdentical(Path.Combine(root, "full", "checkpoints", "last"), store.Find("last")!);
    }

    /// <param name="lossReads">runtime.loss_reads: with log_interval the NaN is found at the next read (iteration 8),
    /// and the report and the diagnostic checkpoint are the same.</param>
    [Theory]
    [InlineData("step")]
    [InlineData("log_interval")]
    public void NonFiniteLoss_StopsWithIterationAndTerm_AndWritesDiagnosticCheckpoint(string lossReads)
    {
        var root = Directory.CreateTempSubdirectory("gfl-nan").FullName;
        var cfg = TinyConfig(root, epochs: 1);
        var work = Path.Combine(root, "run");
        Train(new TrainRequest(cfg, [], work), CancellationToken.None);
        // Corrupt one weight of `last` as a diverged run would, keeping the file consistent with its digest.
        var last = Path.Combine(work, "checkpoints", "last");
        var store = new CheckpointStore(Path.Combine(work, "checkpoints"));
        using (var ck = CheckpointStore.Load(last))
        {
            var model = ck.Model.Tensors.ToDictionary(kv => kv.Key, kv => kv.Value.clone());
            model["bbox_head.gfl_cls.bias"].fill_(float.NaN);
            store.Save("last", model, ck.Optimizer!.Tensors, ck.Meta);
        }
        var e = Assert.Throws<NonFiniteLossException>(() =>
            Train(new TrainRequest(cfg, ["train.epochs=2", $"runtime.loss_reads={lossReads}"], work, Resume: "", ResumeChanged: true), CancellationToken.None));
        Assert.Equal(7, e.Iteration);
        Assert.Contains("loss_cls=NaN", e.Message);
        Assert.Contains("nan_iter_7", e.Message);
        Assert.True(CheckpointStore.IsComplete(Path.Combine(work, "checkpoints", "nan_iter_7")));
        Assert.NotNull(store.Find("last"));   // the last good state is still there
        using var diag = CheckpointStore.Load(Path.Combine(work, "checkpoints", "nan_iter_7"), loadOptimizer: false);
        Assert.Equal(6, diag.Meta.Iteration);
    }

    /// <param name="lossReads">runtime.loss_reads: with log_interval the update of iteration 3 and the one after it are
    /// skipped on the device and the gradient is named at the read after iteration 4, from the gradients kept of
    /// iteration 3; the weights and the report are the same as when every step reads.</param>
    [Theory]
    [InlineData("step")]
    [InlineData("log_interval")]
    public void NonFiniteGradient_StopsBeforeTheUpdate_NamingTheFirstParameter_AndWritesDiagnosticCheckpoint(string lossReads)
    {
        var root = Directory.CreateTempSubdirectory("gfl-nangrad").FullName;
        var cfg = TinyConfig(root, epochs: 1);
        var work = Path.Combine(root, "run");
        int calls = 0;
        List<string> order = [];
        Dictionary<string, float[]> weightsAtFailure = [];
        void Poke(IReadOnlyList<(string Name, Tensor Param)> ps)
        {
            if (++calls != 3) return;
            using var scope = NewDisposeScope();
            order = ps.Select(p => p.Name).ToList();
            weightsAtFailure = ps.ToDictionary(p => p.Name, p => p.Param.detach().cpu().data<float>().ToArray());
            var grads = ps.ToDictionary(p => p.Name, p => p.Param.grad!);
            // Two bad gradients: the report must name the one first in named_parameters order.
            grads["bbox_head.gfl_reg.bias"].view(-1)[0] = float.PositiveInfinity;
            grads["bbox_head.gfl_cls.weight"].view(-1)[5] = float.NaN;
            grads["bbox_head.gfl_cls.weight"].view(-1)[7] = float.NegativeInfinity;
        }
        var e = Assert.Throws<NonFiniteGradientException>(() =>
            Train(new TrainRequest(cfg, [$"runtime.loss_reads={lossReads}"], work), CancellationToken.None, Poke));
        Assert.True(order.IndexOf("bbox_head.gfl_cls.weight") < order.IndexOf("bbox_head.gfl_reg.bias"));
        Assert.Equal(3, e.Iteration);
        Assert.StartsWith("non-finite gradient at iteration 3 (epoch 1): bbox_head.gfl_cls.weight has 2 non-finite of ", e.Message);
        Assert.Contains("values (1 NaN, 1 Inf); 1 later parameters also have non-finite gradients; the optimizer step was not applied", e.Message);
        Assert.Contains("nan_iter_3", e.Message);
        // No optimizer step: the diagnostic checkpoint holds the weights seen after backward of iteration 3, and
        // they are finite (the NaN never reached them).
        var diag = Path.Combine(work, "checkpoints", "nan_iter_3");
        Assert.True(CheckpointStore.IsComplete(diag));
        var saved = Weights(diag);
        Assert.Equal(order.Count, weightsAtFailure.Count);
        foreach (var (name, w) in weightsAtFailure)
        {
            Assert.True(w.SequenceEqual(saved[name]), $"{name} changed after the non-finite gradient");
            Assert.All(w, v => Assert.True(float.IsFinite(v)));
        }
        using var ck = CheckpointStore.Load(diag);
        Assert.Equal("nan-diagnostic", ck.Meta.Reason);
        Assert.Equal(2, ck.Meta.Iteration);
    }

    [Fact]
    public void ProcessMemoryStaysFlatOverHundredsOfIterations()
    {
        var root = Directory.CreateTempSubdirectory("gfl-mem").FullName;
        var cfg = TinyConfig(root, epochs: 40);
        var work = Path.Combine(root, "run");
        using (var p = GflChild.Start(["train", "--config", cfg, "--work-dir", work, "--set", "train.eval_interval=0",
                   "--set", "train.log_interval=6", "--set", "train.checkpoint.interval=100"]))
            Assert.True(p.WaitForExit(TimeSpan.FromMinutes(5)) == 0, p.Output);
        var mem = File.ReadAllLines(Path.Combine(work, "log.jsonl"))
            .Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement)
            .Select(e => (Iter: e.GetProperty("iter").GetInt64(), Mb: e.GetProperty("memory_mb").GetDouble())).ToList();
        Assert.Equal(240, mem[^1].Iter);
        // After warm-up (first quarter: allocator pools, JIT, caches) the resident set must not keep growing.
        var afterWarmup = mem.Where(m => m.Iter >= 60).ToList();
        double baseline = afterWarmup.Take(3).Average(m => m.Mb);
        double growth = afterWarmup.Skip(afterWarmup.Count / 2).Max(m => m.Mb) - baseline;
        Assert.True(growth < 40, $"RSS grew {growth:F1} MB between iteration 60 and 240 (baseline {baseline:F0} MB): a per-step leak");
    }

    [Theory]
    [InlineData("bf16")]
    [InlineData("fp16")]
    public void MixedPrecisionOnCpu_TrainsWithFiniteLosses(string amp)
    {
        var root = Directory.CreateTempSubdirectory("gfl-amp").FullName;
        var cfg = TinyConfig(root, epochs: 1);
        var r = Train(new TrainRequest(cfg, [$"train.amp={amp}", "train.eval_interval=0"], Path.Combine(root, "run")),
            CancellationToken.None);
        Assert.Equal(6, r.Iterations);
        var losses = File.ReadAllLines(Path.Combine(root, "run", "log.jsonl"))
            .Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement.GetProperty("loss").GetDouble()).ToList();
        Assert.NotEmpty(losses);
        Assert.All(losses, l => Assert.True(double.IsFinite(l) && l > 0));
        using var ck = CheckpointStore.Load(Path.Combine(root, "run", "checkpoints", "last"));
        if (amp == "fp16") Assert.True(ck.Meta.LossScale > 0);
        // Weights stay fp32 masters (autocast only changes the compute type).
        Assert.All(ck.Model.Tensors.Values.Where(t => t.is_floating_point()), t => Assert.Equal(ScalarType.Float32, t.dtype));
    }

    /// <summary>The config keys that change how a run executes reach it: deterministic kernels are switched on (and
    /// announced), the classwise table is logged at validation, and Nesterov momentum, mixed-orientation batches and a
    /// different ATSS anchor scale train to the end with finite losses.</summary>
    [Fact]
    public void RunOptionsFromTheConfig_ReachTheRun()
    {
        var root = Directory.CreateTempSubdirectory("gfl-options").FullName;
        var cfg = TinyConfig(root, epochs: 1, extra: """
            evaluation: { classwise: true }
            """);
        var sink = new GflTrainer.Tests.Runtime.Native.ListSink();
        using var log = new Serilog.LoggerConfiguration().WriteTo.Sink(sink).CreateLogger();
        try
        {
            var r = TrainRun.Execute(new TrainRequest(cfg, ["train.deterministic=true", "train.optimizer.nesterov=true",
                "data.group_by_aspect_ratio=false", "model.head.octave_base_scale=6"], Path.Combine(root, "run")),
                log, null, CancellationToken.None);
            Assert.Equal(6, r.Iterations);
            Assert.True(GflTrainer.Runtime.DeterministicAlgorithms.Enabled);
            Assert.True(GflTrainer.Runtime.DeterministicAlgorithms.CuDnnDeterministic);
            var messages = sink.Messages();
            Assert.Contains(messages, m => m.StartsWith("train.deterministic: deterministic algorithms only", StringComparison.Ordinal));
            // mmdetection's classwise table: a header row, then category | AP pairs.
            Assert.Contains(messages, m => m.Contains("category") && m.Contains("AP"));
            Assert.Contains(messages, m => m.Contains("rectangle") && m.Contains("ellipse") && m.Contains("triangle"));
            var losses = File.ReadAllLines(Path.Combine(root, "run", "log.jsonl"))
                .Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement)
                .Where(e => e.TryGetProperty("loss", out _)).Select(e => e.GetProperty("loss").GetDouble()).ToList();
            Assert.NotEmpty(losses);
            Assert.All(losses, l => Assert.True(double.IsFinite(l)));

            GflTrainer.Runtime.DeterministicAlgorithms.Apply(false, Serilog.Core.Logger.None);   // what a run without the key does
            Assert.False(GflTrainer.Runtime.DeterministicAlgorithms.Enabled);
            Assert.False(GflTrainer.Runtime.DeterministicAlgorithms.CuDnnDeterministic);
        }
        finally
        {
            GflTrainer.Runtime.DeterministicAlgorithms.Set(false);
        }
    }

    /// <summary>A resume continues the same run: a changed hyper-parameter or training file is listed and refused
    /// (exit 2) unless --resume-changed accepts it, which is then logged and recorded in every later checkpoint.
    /// Harmless keys (logging cadence, loader threads, moved paths with the same contents) pass.</summary>
    [Fact]
    public void ResumeOfAChangedRun_IsRefusedUnlessAccepted_AndTheChangeIsRecorded()
    {
        var root = Directory.CreateTempSubdirectory("gfl-changed").FullName;
        var cfg = TinyConfig(root, epochs: 1);
        var work = Path.Combine(root, "run");
        Train(new TrainRequest(cfg, ["train.eval_interval=0"], work), CancellationToken.None);

        // The same annotations under another path, and one with an image removed.
        var original = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(Dataset.Value, "annotations", "instances_train.json")))!;
        var moved = Path.Combine(root, "moved.json");
        File.Copy(Path.Combine(Dataset.Value, "annotations", "instances_train.json"), moved);
        var images = original["images"]!.AsArray();
        var dropped = images[^1]!["id"]!.GetValue<long>();
        images.RemoveAt(images.Count - 1);
        var anns = original["annotations"]!.AsArray();
        foreach (var a in anns.Where(a => a!["image_id"]!.GetValue<long>() == dropped).ToList()) anns.Remove(a);
        var fewer = Path.Combine(root, "fewer.json");
        File.WriteAllText(fewer, original.ToJsonString());

        var refused = Assert.Throws<GflConfigException>(() => Train(new TrainRequest(cfg,
            ["train.eval_interval=0", "train.epochs=2", "train.optimizer.lr=0.02", $"data.train.ann_file={fewer}", "data.workers=0", "train.log_interval=1"],
            work, Resume: ""), CancellationToken.None));
        Assert.Equal("--resume", refused.Key);
        Assert.Contains("train.epochs: 1 -> 2", refused.Message);
        Assert.Contains("train.optimizer.lr: 0.01 -> 0.02", refused.Message);
        Assert.Matches(@"training annotations: sha256 [0-9a-f]{12}\.\. \(12 images\) -> sha256 [0-9a-f]{12}\.\. \(11 images\)", refused.Message);
        Assert.DoesNotContain("workers", refused.Message);
        Assert.DoesNotContain("log_interval", refused.Message);
        Assert.Contains("--resume-changed", refused.Message);

        // Only harmless differences: the resume goes ahead (nothing left to train: the run already finished).
        Train(new TrainRequest(cfg, ["train.eval_interval=0", $"data.train.ann_file={moved}", "data.workers=0"], work, Resume: ""),
            CancellationToken.None);

        var accepted = Train(new TrainRequest(cfg, ["train.eval_interval=0", "train.epochs=2"], work, Resume: "", ResumeChanged: true),
            CancellationToken.None);
        Assert.Equal(12, accepted.Iterations);
        using var ck = CheckpointStore.Load(Path.Combine(work, "checkpoints", "last"));
        Assert.Equal(["iteration 6: train.epochs: 1 -> 2"], ck.Meta.Changes);
        Assert.False(ck.Meta.Reproducible);
        Assert.Equal(12, ck.Meta.Fingerprint!.TrainImages);
        Assert.Equal(1, ck.Meta.Fingerprint.WorldSize);
        Assert.Contains("\"reproducible\": false", File.ReadAllText(Path.Combine(work, "checkpoints", "last", CheckpointStore.MetaFile)));
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill")] private static extern int Kill(int pid, int signal);

    /// <summary>Slurm's preemption warning (SIGUSR1) mid-run: the iteration finishes, <c>last</c> is written, the
    /// process exits 138 within a bound of one step plus a save, and an --auto-resume continues bit-exactly.</summary>
    [Fact]
    public void Sigusr1_SavesLastAndExits138_ThenAutoResumeEndsBitIdentical()
    {
        var root = Directory.CreateTempSubdirectory("gfl-usr1").FullName;
        var cfg = TinyConfig(root, epochs: 2);
        var full = Train(new TrainRequest(cfg, [], Path.Combine(root, "full")), CancellationToken.None);

        var work = Path.Combine(root, "preempted");
        TimeSpan stopped;
        string output;
        using (var p = GflChild.Start(["train", "--config", cfg, "--work-dir", work]))
        {
            var log = Path.Combine(work, "log.jsonl");
            Assert.True(p.WaitUntil(() => File.Exists(log) && File.ReadAllLines(log).Length >= 2, TimeSpan.FromMinutes(2)),
                "training finished before the signal:\n" + p.Output);
            var sent = Stopwatch.StartNew();
            Assert.Equal(0, Kill(p.Id, 10));
            int code = p.WaitForExit(TimeSpan.FromSeconds(60));
            stopped = sent.Elapsed;
            output = p.Output;
            Assert.True(code == 138, $"exit {code}; output:\n{output}");
        }
        Assert.Contains("SIGUSR1: stopping after the current iteration", output);
        using (var ck = CheckpointStore.Load(Path.Combine(work, "checkpoints", "last")))
            Assert.Equal("interrupt", ck.Meta.Reason);
        Assert.True(stopped < TimeSpan.FromSeconds(60));
        var resumed = Train(new TrainRequest(cfg, [], work, AutoResume: true), CancellationToken.None);
        Assert.Equal(full.Iterations, resumed.Iterations);
        AssertBitIdentical(Path.Combine(root, "full", "checkpoints", "last"), Path.Combine(work, "checkpoints", "last"));
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "mkfifo", SetLastError = true)]
    private static extern int MkFifo(string path, uint mode);

    /// <summary>An image read that never returns (a FIFO nobody writes: what a stalled NFS read looks like to the
    /// loader) trips the watchdog, in a training iteration or in the evaluation after an epoch: the report names the file
    /// and shows the managed stacks, exit 124. In training <c>last</c> is saved at the hung iteration; in evaluation the
    /// epoch's checkpoint written just before stays the resume point.</summary>
    [Theory]
    [InlineData("train")]
    [InlineData("val")]
    public void StalledImageRead_TripsTheWatchdog_NamesTheFile_Exits124(string split)
    {
        var root = Directory.CreateTempSubdirectory("gfl-stall").FullName;
        var data = Path.Combine(root, "data");
        SyntheticShapes.Write(data, new SyntheticShapesOptions { Seed = 5, TrainImages = 6, ValImages = 2, ImageSize = 96, MinSide = 20, MaxSide = 60 });
        var annotations = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(data, "annotations", $"instances_{split}.json")))!;
        var stalled = Path.Combine(data, "images", annotations["images"]![split == "train" ? 3 : 1]!["file_name"]!.GetValue<string>());
        File.Delete(stalled);
        Assert.Equal(0, MkFifo(stalled, Convert.ToUInt32("644", 8)));
        var cfg = Path.Combine(root, "stall.yaml");
        File.WriteAllText(cfg, File.ReadAllText(TinyConfig(root, epochs: 1)).Replace(Dataset.Value, data)
            .Replace("  eval_interval: 1", "  eval_interval: 1\n  watchdog: { factor: 2, min_seconds: 3 }"));

        var work = Path.Combine(root, "run");
        string text;
        using (var p = GflChild.Start(["train", "--config", cfg, "--work-dir", work]))
        {
            int code = p.WaitForExit(TimeSpan.FromSeconds(120));
            text = p.Output;
            Assert.True(code == 124, $"exit {code}:\n{text}");
        }
        Assert.Contains("made no progress for", text);
        Assert.Contains($"images still being read/decoded: {stalled} (", text);
        // The managed stacks (read by a `gfl stacks` child through ptrace) show the loader thread blocked in the read.
        Assert.Contains("managed stacks:", text);
        Assert.Matches(@"at GflTrainer\.Data\.\S+", text);
        Assert.Contains("watchdog", File.ReadAllText(Path.Combine(work, "train.log")));
        using var ck = CheckpointStore.Load(Path.Combine(work, "checkpoints", "last"));
        if (split == "train")
        {
            Assert.Contains("in phase 'data'", text);
            Assert.Contains("watchdog: saved", text);
            Assert.Equal("hang", ck.Meta.Reason);
        }
        else
        {
            Assert.True(text.Contains("phase 'eval' after iteration 3 made no progress"), text);
            Assert.Contains("stays the resume point", text);
            Assert.Equal("final", ck.Meta.Reason);   // the last epoch's checkpoint
            Assert.Equal(3, ck.Meta.Iteration);
        }
    }

    /// <summary>Near the cgroup memory limit the run stops between iterations with a message and <c>last</c> saved,
    /// instead of a SIGKILL from the OOM killer (a recorded cgroup v2 whose anonymous memory is over 95 % of its limit).</summary>
    [Fact]
    public void NearTheCgroupMemoryLimit_SavesLastAndStopsWithAMessage()
    {
        var root = Directory.CreateTempSubdirectory("gfl-oom").FullName;
        var cgroup = Path.Combine(root, "cgroup");
        Directory.CreateDirectory(Path.Combine(cgroup, "job"));
        File.WriteAllText(Path.Combine(cgroup, "cgroup.controllers"), "memory\n");
        File.WriteAllText(Path.Combine(cgroup, "job", "memory.max"), $"{100L << 20}\n");
        File.WriteAllText(Path.Combine(cgroup, "job", "memory.stat"), $"anon {97L << 20}\nfile {900L << 20}\n");
        var limited = GflTrainer.Runtime.CgroupMemory.Detect(cgroup, "0::/job\n")!;
        var cfg = TinyConfig(root, epochs: 1);
        var work = Path.Combine(root, "run");

        var e = Assert.Throws<MemoryLimitException>(() => TrainRun.Execute(new TrainRequest(cfg, [], work),
            Serilog.Core.Logger.None, null, CancellationToken.None, new TrainTestHooks(Cgroup: limited)));

        Assert.StartsWith("memory: 97 MB of the cgroup limit 100 MB in use (97 % > train.memory_limit_fraction 0.95): saved ", e.Message);
        Assert.Contains("--auto-resume", e.Message);
        using (var ck = CheckpointStore.Load(Path.Combine(work, "checkpoints", "last")))
        {
            Assert.Equal("memory", ck.Meta.Reason);
            Assert.Equal(1, ck.Meta.Iteration);
        }
        // Below the threshold (or with the guard off) the same run trains to the end.
        var r = TrainRun.Execute(new TrainRequest(cfg, ["train.memory_limit_fraction=null"], Path.Combine(root, "off")),
            Serilog.Core.Logger.None, null, CancellationToken.None, new TrainTestHooks(Cgroup: limited));
        Assert.Equal(6, r.Iterations);
    }

    static long VmHwmMb() => long.Parse(File.ReadLines("/proc/self/status").First(l => l.StartsWith("VmHWM:"))
        .Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) >> 10;

    /// <summary>Several trainings in one process (what a long-lived service or a sweep does) reach the same peak
    /// memory each time: the high-water mark (VmHWM, reset before each run through /proc/self/clear_refs, so peaks
    /// between samples count) of the last run is within 64 MB of the second's. A leak per run or per step grows it.</summary>
    [Fact]
    public void RepeatedTrainingsInOneProcess_ReachTheSamePeakMemory()
    {
        var root = Directory.CreateTempSubdirectory("gfl-soak").FullName;
        var cfg = TinyConfig(root, epochs: 3);
        var peaks = new List<long>();
        for (int run = 0; run < 5; run++)
        {
            GC.Collect(); GC.WaitForPendingFinalizers(); GC.Collect();
            File.WriteAllText("/proc/self/clear_refs", "5");   // VmHWM := current RSS
            Train(new TrainRequest(cfg, ["train.eval_interval=0"], Path.Combine(root, $"run{run}")), CancellationToken.None);
            peaks.Add(VmHwmMb());
        }
        // Run 0 warms up (JIT, allocator pools, oneDNN caches); from run 1 on the peak must not climb.
        Assert.True(peaks[^1] - peaks[1] < 64, $"peak RSS per run (MB): {string.Join(", ", peaks)}");
    }
}
