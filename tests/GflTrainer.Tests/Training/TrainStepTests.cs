using GflTrainer.Config;
using GflTrainer.Model;
using GflTrainer.Runtime;
using GflTrainer.Training;
using GflTrainer.Training.Losses;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Training;

/// <summary>The one train step of <c>gfl train</c> and <c>gfl bench train-step</c>.</summary>
public sealed class TrainStepTests : IDisposable
{
    // The optimizers Build made (their flat buffers are native memory), released after each test.
    readonly List<IDisposable> _optimizers = [];

    public void Dispose()
    {
        foreach (var o in _optimizers) o.Dispose();
    }

    static readonly GflConfig Tiny = new()
    {
        Model = new ModelConfig
        {
            Backbone = new BackboneConfig { Depth = 18, BaseChannels = 8, FrozenStages = -1, NormEval = false },
            Neck = new NeckConfig { OutChannels = 16 },
            Head = new HeadConfig { NumClasses = 3, FeatChannels = 16, StackedConvs = 1, NormGroups = 4 },
        },
    };

    (GflDetector Model, Sgd Sgd, TrainStep Step) Build(GflConfig cfg, bool? oneRead = null,
        Action<IReadOnlyList<(string Name, Tensor Param)>>? afterBackward = null)
    {
        manual_seed(0);
        var model = DetectorFactory.CreateDetector(cfg.Model);
        model.train();
        if (cfg.Runtime.ChannelsLast) ChannelsLast.Apply(model);
        var sgd = new Sgd(model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => (p.name, (Tensor)p.parameter)), 0.01, 0.9, 1e-4);
        _optimizers.Add(sgd);
        return (model, sgd, TrainStep.FromConfig(cfg, model, sgd, CPU, afterBackwardForTests: afterBackward, oneRead: oneRead));
    }

    static (Tensor Images, List<Tensor> Boxes, List<Tensor> Labels, List<(int, int)> Pads) Batch()
    {
        var images = randn(2, 3, 64, 64);
        var boxes = new List<Tensor> { tensor(new float[,] { { 4, 4, 40, 30 } }), tensor(new float[,] { { 10, 12, 50, 60 } }) };
        var labels = new List<Tensor> { tensor(new long[] { 0 }), tensor(new long[] { 2 }) };
        return (images, boxes, labels, [(64, 64), (64, 64)]);
    }

    static Dictionary<string, Tensor> Weights(GflDetector model) =>
        model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());

    static GflConfig WithHead(HeadType head) => Tiny with { Model = Tiny.Model with { Head = Tiny.Model.Head with { Type = head } } };

    static void AssertBitEqualWeights(GflDetector a, GflDetector b)
    {
        var wb = Weights(b);
        foreach (var (name, p) in Weights(a))
            Assert.True(p.equal(wb[name]).all().item<bool>(), $"{name}: max diff {(p - wb[name]).abs().max().item<float>()}");
    }

    [Fact]
    public void Step_ReportsNamedTerms_AndUpdatesTheWeights()
    {
        using var scope = NewDisposeScope();
        var (model, sgd, step) = Build(Tiny);
        var before = Weights(model);
        var (images, boxes, labels, pads) = Batch();
        var r = step.Run(images, boxes, labels, pads);

        Assert.True(r.LossFinite);
        Assert.True(r.Update!.Value.Applied);
        Assert.Equal(["loss_cls", "loss_bbox", "loss_dfl"], r.Losses.Terms.Select(t => t.Name));
        Assert.Equal(r.Losses.Terms.Sum(t => t.Value), r.Losses.Total, 5);
        Assert.Contains(model.named_parameters(), p => !p.parameter.equal(before[p.name]).all().item<bool>());
    }

    [Fact]
    public void NonFiniteLoss_RunsNoBackward_AndLeavesTheWeights()
    {
        using var scope = NewDisposeScope();
        var (model, sgd, step) = Build(Tiny);
        var before = Weights(model);
        var (images, boxes, labels, pads) = Batch();
        images.fill_(float.NaN);
        var r = step.Run(images, boxes, labels, pads);

        Assert.False(r.LossFinite);
        Assert.Null(r.Update);
        Assert.Contains("loss_cls=NaN", r.Losses.ToString());
        // No backward ran: the gradients are still the zeros of the fresh optimizer (a NaN backward would fill them).
        Assert.All(model.parameters(), p => Assert.Equal(0, p.grad!.abs().sum().item<float>()));
        // Parameters only: the forward pass has already run (BatchNorm statistics see the batch, as in the reference).
        Assert.All(model.named_parameters(), p => Assert.True(p.parameter.equal(before[p.name]).all().item<bool>(), p.name));
    }

    [Fact]
    public void LossWindow_AveragesEachTermByName()
    {
        var w = new LossWindow();
        w.Add(new LossScalars(3, [new("loss_cls", 1), new("loss_bbox", 2)]), 1, 0.5);
        w.Add(new LossScalars(5, [new("loss_cls", 3), new("loss_bbox", 2)]), 3, 0.5);
        var s = w.Drain();
        Assert.Equal(4, s.Losses.Total);
        Assert.Equal(2, s.Losses["loss_cls"]);
        Assert.Equal(2, s.Losses["loss_bbox"]);
        Assert.Equal((2.0, 0.5), (s.Time, s.DataTime));
        Assert.Equal("cls 2.0000 bbox 2.0000", ProgressReporter.Terms(s.Losses));
        Assert.Empty(w.Drain().Losses.Terms);
    }

    /// <summary>The flat gradient buffer cannot tell "no gradient" from "zero gradient" (FlatParameters): every trainable
    /// parameter of every head must be in the loss's graph, or weight decay would move one torch.optim.SGD leaves alone.
    /// (Zero gradients are expected: zero_init_residual makes a block's branch weights' first gradients exactly 0.)</summary>
    [Theory]
    [InlineData(HeadType.Gfl)]
    [InlineData(HeadType.Atss)]
    [InlineData(HeadType.Retinanet)]
    public void Every_trainable_parameter_is_in_the_graph_of_the_loss(HeadType head)
    {
        using var scope = NewDisposeScope();
        var cfg = Tiny with { Model = Tiny.Model with { Head = Tiny.Model.Head with { Type = head } } };
        manual_seed(0);
        var model = DetectorFactory.CreateDetector(cfg.Model);
        model.train();
        var named = model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => (p.name, (Tensor)p.parameter)).ToList();
        var (images, boxes, labels, pads) = Batch();
        var loss = DenseHeadLoss.FromConfig(cfg.Model).Compute(model.forward(images), boxes, labels, pads).Total;
        var grads = autograd.grad([loss], named.Select(p => p.Item2).ToList(), allow_unused: true);
        Assert.Empty(named.Where((p, i) => grads[i] is null || grads[i].IsInvalid).Select(p => p.Item1));
        Assert.Equal(named.Count, grads.Count);
    }

    /// <summary>runtime.channels_last trains the same model: from the same weights and batches, three steps of each head
    /// give the NCHW losses and weights up to the float rounding of the NHWC kernels (other summation orders; 1e-4
    /// relative on the losses, 1e-4 absolute on weights of magnitude ~0.1 after lr 0.01 updates), and the conv weights
    /// stay channels_last through the updates.</summary>
    [Theory]
    [InlineData(HeadType.Gfl)]
    [InlineData(HeadType.Atss)]
    [InlineData(HeadType.Retinanet)]
    public void Channels_last_step_trains_as_the_NCHW_step(HeadType head)
    {
        using var scope = NewDisposeScope();
        var cfg = WithHead(head);
        var (m1, sgd1, step1) = Build(cfg);
        var (m2, sgd2, step2) = Build(cfg with { Runtime = cfg.Runtime with { ChannelsLast = true } });
        Assert.Contains(m2.parameters(), p => p.dim() == 4);
        Assert.All(m2.parameters().Where(p => p.dim() == 4), p => Assert.True(ChannelsLast.Is(p)));
        for (int i = 0; i < 3; i++)
        {
            manual_seed(100 + i);
            var (images, boxes, labels, pads) = Batch();
            var r1 = step1.Run(images, boxes, labels, pads);
            var r2 = step2.Run(images, boxes, labels, pads);
            Assert.True(r1.LossFinite && r2.LossFinite);
            foreach (var (a, b) in r1.Losses.Terms.Zip(r2.Losses.Terms))
                Assert.True(Math.Abs(a.Value - b.Value) <= 1e-4 * Math.Max(1, Math.Abs(a.Value)), $"step {i} {a.Name}: {a.Value} vs {b.Value}");
        }
        var w2 = Weights(m2);
        foreach (var (name, p) in Weights(m1))
            Assert.True(allclose(p, w2[name], 1e-4, 1e-4), $"{name}: max diff {(p - w2[name]).abs().max().item<float>()}");
        Assert.All(m2.parameters().Where(p => p.dim() == 4), p => Assert.True(ChannelsLast.Is(p)));
    }

    [Theory]
    [InlineData(HeadType.Gfl)]
    [InlineData(HeadType.Atss)]
    [InlineData(HeadType.Retinanet)]
    public void Step_with_targets_built_ahead_equals_the_step_building_them_bit_for_bit(HeadType head)
    {
        using var scope = NewDisposeScope();
        var cfg = WithHead(head);
        var (m1, sgd1, step1) = Build(cfg);
        var (m2, sgd2, step2) = Build(cfg);
        var host = new HostTargets(step2.Loss.TargetBuilder);
        for (int i = 0; i < 3; i++)
        {
            var (boxArrays, labelArrays, pads) = Losses.HostTargetsTests.Batch(20 + i);
            manual_seed(200 + i);
            var images = randn(3, 3, 96, 128);
            var (boxes, labels) = Losses.HostTargetsTests.Tensors(boxArrays, labelArrays);
            var r1 = step1.Run(images, boxes, labels, pads);
            var r2 = step2.Run(images, boxes, labels, pads, host.Build(boxArrays, labelArrays, pads, (96, 128)).ToDevice(CPU));
            Assert.True(r1.LossFinite && r2.LossFinite);
            Assert.Equal(r1.Losses.Terms.Select(t => (t.Name, t.Value)), r2.Losses.Terms.Select(t => (t.Name, t.Value)));
        }
        AssertBitEqualWeights(m1, m2);

        // The step trains on the targets it is given: those of other ground truth give other losses.
        var (otherBoxes, otherLabels, otherPads) = Losses.HostTargetsTests.Batch(99);
        var (gtBoxes, gtLabels, gtPads) = Losses.HostTargetsTests.Batch(23);
        var x = randn(3, 3, 96, 128);
        var (gtBoxTensors, gtLabelTensors) = Losses.HostTargetsTests.Tensors(gtBoxes, gtLabels);
        var own = step1.Run(x, gtBoxTensors, gtLabelTensors, gtPads);
        var other = step2.Run(x, gtBoxTensors, gtLabelTensors, gtPads,
            host.Build(otherBoxes, otherLabels, otherPads, (96, 128)).ToDevice(CPU));
        Assert.NotEqual(own.Losses.Total, other.Losses.Total);
    }

    /// <summary>Operators whose output size depends on the data (nonzero, masked_select, unique...) or that read a value
    /// back inside libtorch: on a GPU each waits for the device. (TorchSharp's own <c>item</c> and <c>data</c> read the
    /// memory without dispatching an operator on the CPU, so they are not seen here; the deferred step calls neither.)</summary>
    static readonly string[] HostReads =
        ["aten::_local_scalar_dense", "aten::item", "aten::nonzero", "aten::masked_select", "aten::unique", "aten::_unique",
         "aten::_unique2", "aten::unique_consecutive", "aten::is_nonzero", "aten::equal", "aten::allclose", "aten::repeat_interleave"];

    /// <summary>The deferred step with targets built ahead and padded positives (CUDA's defaults, plus the padding a graph
    /// needs), counted by libtorch's own dispatcher: no operator of <see cref="HostReads"/>, and the same operators in
    /// the same order for batches with different images, ground truth and positives: what a CUDA graph captured once
    /// would replay (the first step differs: it makes the momentum buffer and, with fp16, moves the loss scale). A
    /// batch over the capacity or without positives takes other paths; the graph runner runs those uncaptured.</summary>
    [Theory]
    [InlineData(HeadType.Gfl, AmpMode.Off)]
    [InlineData(HeadType.Gfl, AmpMode.Fp16)]
    [InlineData(HeadType.Atss, AmpMode.Off)]
    [InlineData(HeadType.Retinanet, AmpMode.Off)]
    public void Deferred_step_dispatches_no_data_dependent_size_and_the_same_operators_for_every_batch(HeadType head, AmpMode amp)
    {
        using var scope = NewDisposeScope();
        var (_, _, step) = Build(WithHead(head) with { Train = Tiny.Train with { Amp = amp } });
        var host = new HostTargets(step.Loss.TargetBuilder, positiveCapacity: 2000);
        var sequences = new List<IReadOnlyList<string>>();
        var positives = new List<long>();
        for (int i = 0; i < 4; i++)
        {
            var (boxArrays, labelArrays, pads) = Losses.HostTargetsTests.Batch(40 + i);
            manual_seed(400 + i);
            var images = randn(3, 3, 96, 128);
            var (boxes, labels) = Losses.HostTargetsTests.Tensors(boxArrays, labelArrays);
            using var built = host.Build(boxArrays, labelArrays, pads, (96, 128));
            Assert.True(built.PositivesPadded);
            var targets = built.ToDevice(CPU);
            positives.Add(targets.PositiveCount);
            Tensor row;
            IReadOnlyList<string> sequence;
            IReadOnlyDictionary<string, long> calls;
            using (var recorder = GflTrainer.Runtime.Native.AtenOpRecorder.Start(names: true))
            {
                row = step.RunDeferred(images, boxes, labels, pads, targets);
                sequence = recorder.TopLevelSequence;
                calls = recorder.CallsByName();
            }
            using (row) Assert.True(Read(step, row)[0].Applied);
            Assert.DoesNotContain(calls.Keys, HostReads.Contains);
            Assert.True(sequence.Count > 100, $"{sequence.Count} operators");
            sequences.Add(sequence);
        }
        Assert.True(positives.Distinct().Count() > 1, $"the batches differ in positives: {string.Join(", ", positives)}");
        for (int i = 2; i < sequences.Count; i++)
            Assert.Equal(sequences[1], sequences[i]);

        // The control: building the targets in the step (the CPU's default) finds the positives with nonzero.
        var (b, l, p) = Losses.HostTargetsTests.Batch(40);
        using var inStep = GflTrainer.Runtime.Native.AtenOpRecorder.Start(names: true);
        var (bt, lt) = Losses.HostTargetsTests.Tensors(b, l);
        using var inStepRow = step.RunDeferred(randn(3, 3, 96, 128), bt, lt, p);
        Assert.Contains(inStep.CallsByName().Keys, HostReads.Contains);
    }

    /// <summary>The GPU's order (<see cref="TrainStep.OneRead"/>: loss and gradient check read together after backward),
    /// forced on the CPU: the same losses and weights bit for bit, with fp32 and with the fp16 loss scaler.</summary>
    [Theory]
    [InlineData(HeadType.Gfl, AmpMode.Off)]
    [InlineData(HeadType.Atss, AmpMode.Off)]
    [InlineData(HeadType.Retinanet, AmpMode.Off)]
    [InlineData(HeadType.Gfl, AmpMode.Fp16)]
    public void One_read_step_trains_as_the_step_reading_the_loss_first(HeadType head, AmpMode amp)
    {
        using var scope = NewDisposeScope();
        var cfg = WithHead(head) with { Train = Tiny.Train with { Amp = amp } };
        var (m1, sgd1, step1) = Build(cfg, oneRead: false);
        var (m2, sgd2, step2) = Build(cfg, oneRead: true);
        Assert.False(step1.OneRead);
        Assert.True(step2.OneRead);
        for (int i = 0; i < 3; i++)
        {
            manual_seed(300 + i);
            var (images, boxes, labels, pads) = Batch();
            var r1 = step1.Run(images, boxes, labels, pads);
            var r2 = step2.Run(images, boxes, labels, pads);
            Assert.Equal(r1.Losses.Terms.Select(t => (t.Name, t.Value)), r2.Losses.Terms.Select(t => (t.Name, t.Value)));
            Assert.Equal(r1.Update, r2.Update);
            Assert.Equal(step1.Scaler?.Scale, step2.Scaler?.Scale);
        }
        AssertBitEqualWeights(m1, m2);
        Assert.False(new TrainStep(m1, step1.Loss, new OptimizerStep(sgd1, null, null), null, CPU).OneRead);   // the CPU default
    }

    [Theory]
    [InlineData(AmpMode.Off)]
    [InlineData(AmpMode.Fp16)]
    public void One_read_step_on_a_non_finite_loss_leaves_the_weights_and_the_loss_scale(AmpMode amp)
    {
        using var scope = NewDisposeScope();
        var (model, sgd, step) = Build(Tiny with { Train = Tiny.Train with { Amp = amp } }, oneRead: true);
        var before = Weights(model);
        var scale = step.Scaler?.Scale;
        var (images, boxes, labels, pads) = Batch();
        images.fill_(float.NaN);
        var r = step.Run(images, boxes, labels, pads);

        Assert.False(r.LossFinite);
        Assert.Null(r.Update);
        Assert.Contains("loss_cls=NaN", r.Losses.ToString());
        Assert.Equal(scale, step.Scaler?.Scale);
        Assert.Equal(0, step.Scaler?.CleanSteps ?? 0);
        Assert.Empty(sgd.MomentumBuffers);
        Assert.All(model.named_parameters(), p => Assert.True(p.parameter.equal(before[p.name]).all().item<bool>(), p.name));
    }

    [Fact]
    public void One_read_step_names_a_non_finite_gradient_and_skips_an_fp16_overflow()
    {
        using var scope = NewDisposeScope();
        void Poison(IReadOnlyList<(string Name, Tensor Param)> ps) => ps.Single(p => p.Name == "bbox_head.gfl_cls.bias").Param.grad!.index_fill_(0, tensor(new long[] { 1 }), float.PositiveInfinity);
        var (model, sgd, step) = Build(Tiny, oneRead: true, afterBackward: Poison);
        var before = Weights(model);
        var (images, boxes, labels, pads) = Batch();
        var r = step.Run(images, boxes, labels, pads);
        Assert.True(r.LossFinite);
        Assert.False(r.Update!.Value.Applied);
        Assert.Equal("bbox_head.gfl_cls.bias", r.Update.Value.NonFinite!.Parameter);
        Assert.Equal(0, r.Update.Value.NonFinite.Nan);
        Assert.All(model.named_parameters(), p => Assert.True(p.parameter.equal(before[p.name]).all().item<bool>(), p.name));

        var (m16, sgd16, step16) = Build(Tiny with { Train = Tiny.Train with { Amp = AmpMode.Fp16 } }, oneRead: true, afterBackward: Poison);
        var scale = step16.Scaler!.Scale;
        var r16 = step16.Run(images, boxes, labels, pads);
        Assert.Equal(new OptimizerStepOutcome(false, null), r16.Update);
        Assert.Equal(scale / 2, step16.Scaler.Scale);
    }

    // The rows of RunDeferred read back as the trainer reads them.
    static IReadOnlyList<DeferredStep> Read(TrainStep step, params Tensor[] rows)
    {
        using var deferred = new DeferredLosses();
        for (int i = 0; i < rows.Length; i++) deferred.Add(rows[i], i + 1, 0, i + 1, 0.01, 0);
        return deferred.Read(step.LossTermNames!);
    }

    /// <summary>runtime.loss_reads: log_interval (the CUDA default): the step reads nothing back, decides the
    /// update on the device, and trains bit for bit as the step that reads every loss, for the three heads, bf16 and fp16 (its loss scale on the device).</summary>
    [Theory]
    [InlineData(HeadType.Gfl, AmpMode.Off)]
    [InlineData(HeadType.Gfl, AmpMode.Bf16)]
    [InlineData(HeadType.Gfl, AmpMode.Fp16)]
    [InlineData(HeadType.Atss, AmpMode.Off)]
    [InlineData(HeadType.Retinanet, AmpMode.Off)]
    public void Deferred_step_trains_as_the_step_that_reads_its_loss(HeadType head, AmpMode amp)
    {
        using var scope = NewDisposeScope();
        var cfg = WithHead(head) with { Train = Tiny.Train with { Amp = amp } };
        var (m1, _, step1) = Build(cfg, oneRead: false);
        var (m2, sgd2, step2) = Build(cfg);
        var results = new List<TrainStepResult>();
        var rows = new List<Tensor>();
        for (int i = 0; i < 3; i++)
        {
            manual_seed(400 + i);
            var (images, boxes, labels, pads) = Batch();
            results.Add(step1.Run(images, boxes, labels, pads));
            rows.Add(step2.RunDeferred(images, boxes, labels, pads));
        }
        var read = Read(step2, [.. rows]);
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(results[i].Losses.Terms.Select(t => (t.Name, t.Value)), read[i].Losses.Terms.Select(t => (t.Name, t.Value)));
            Assert.Equal(results[i].Losses.Total, read[i].Losses.Total);
            Assert.True(read[i].Applied && read[i].GradientsFinite);
        }
        AssertBitEqualWeights(m1, m2);
        Assert.Null(step2.FirstRefusedGradient());
        Assert.NotEmpty(sgd2.MomentumBuffers);
        Assert.Equal(step1.Scaler?.Scale, step2.Scaler?.Scale);
        Assert.Equal(step1.Scaler?.CleanSteps, step2.Scaler?.CleanSteps);
        Assert.Equal(amp == AmpMode.Fp16, step2.Scaler?.OnDevice ?? false);
    }

    /// <summary>fp16 with the loss scale on the device: a gradient overflow skips that step and backs the scale off, as
    /// the reading step does, and the run goes on (not halted); a non-finite loss halts it with the scale untouched.</summary>
    [Fact]
    public void Deferred_fp16_step_skips_an_overflow_and_halts_on_a_non_finite_loss()
    {
        using var scope = NewDisposeScope();
        var cfg = Tiny with { Train = Tiny.Train with { Amp = AmpMode.Fp16 } };
        int calls1 = 0, calls2 = 0;
        static void Overflow(IReadOnlyList<(string Name, Tensor Param)> ps, ref int calls)
        {
            if (++calls == 2) ps.Single(p => p.Name == "bbox_head.gfl_cls.bias").Param.grad!.index_fill_(0, tensor(new long[] { 0 }), float.PositiveInfinity);
        }
        var (m1, _, step1) = Build(cfg, oneRead: false, afterBackward: ps => Overflow(ps, ref calls1));
        var (m2, _, step2) = Build(cfg, afterBackward: ps => Overflow(ps, ref calls2));
        var rows = new List<Tensor>();
        for (int i = 0; i < 5; i++)
        {
            manual_seed(700 + i);
            var (images, boxes, labels, pads) = Batch();
            if (i == 3) images.fill_(float.NaN);
            if (i < 3)
            {
                var r = step1.Run(images, boxes, labels, pads);
                Assert.Equal(i != 1, r.Update!.Value.Applied);
            }
            rows.Add(step2.RunDeferred(images, boxes, labels, pads));
        }
        var read = Read(step2, [.. rows]);
        Assert.Equal([true, false, true, false, false], read.Select(r => r.Applied));
        Assert.Equal([false, false, false, true, true], read.Select(r => r.Halted));
        Assert.False(read[1].GradientsFinite);
        AssertBitEqualWeights(m1, m2);
        Assert.Equal(step1.Scaler!.Scale, step2.Scaler!.Scale);   // backed off once, untouched by the halted steps
        Assert.Equal(65536.0 / 2, step2.Scaler.Scale);
        Assert.Equal(step1.Scaler.CleanSteps, step2.Scaler.CleanSteps);
        Assert.Null(step2.FirstRefusedGradient());   // fp16 keeps no gradients: an overflow is not named
    }

    /// <summary>Gradient clipping on the flat buffer (the deferred step cannot read clip_grad_norm_'s norm): the same
    /// norm summed in another order, so the weights agree with libtorch's clipping to float rounding.</summary>
    [Fact]
    public void Deferred_step_clips_as_clip_grad_norm()
    {
        using var scope = NewDisposeScope();
        var cfg = Tiny with { Train = Tiny.Train with { GradClip = new GradClipConfig { MaxNorm = 1e-3 } } };
        var (m1, _, step1) = Build(cfg, oneRead: false);
        var (m2, _, step2) = Build(cfg);
        var (unclipped, _, step3) = Build(Tiny, oneRead: false);
        for (int i = 0; i < 3; i++)
        {
            manual_seed(500 + i);
            var (images, boxes, labels, pads) = Batch();
            step1.Run(images, boxes, labels, pads);
            step3.Run(images, boxes, labels, pads);
            Assert.True(Read(step2, step2.RunDeferred(images, boxes, labels, pads))[0].Applied);
        }
        var w1 = Weights(m1); var w3 = Weights(unclipped);
        foreach (var (name, w) in Weights(m2))
            Assert.True(w.allclose(w1[name], rtol: 1e-5, atol: 1e-7), name);
        Assert.Contains(w1, kv => !kv.Value.equal(w3[kv.Key]).all().item<bool>());   // the norm was over 1e-3: clipping acted
    }

    /// <summary>A non-finite loss or gradient in a deferred step: that update and every later one are skipped on the
    /// device, so when the rows are read the weights and momentum are those the reading step leaves when it stops
    /// there, and the first bad gradient is still named.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Deferred_step_refuses_a_non_finite_step_and_every_later_one(bool badGradient)
    {
        using var scope = NewDisposeScope();
        int calls = 0;
        void Poison(IReadOnlyList<(string Name, Tensor Param)> ps)
        {
            if (badGradient && ++calls == 2)
                ps.Single(p => p.Name == "bbox_head.gfl_cls.bias").Param.grad!.index_fill_(0, tensor(new long[] { 1 }), float.NaN);
        }
        var (m1, sgd1, step1) = Build(Tiny, oneRead: false);
        var (m2, sgd2, step2) = Build(Tiny, afterBackward: Poison);
        var rows = new List<Tensor>();
        for (int i = 0; i < 4; i++)
        {
            manual_seed(600 + i);
            var (images, boxes, labels, pads) = Batch();
            if (i == 1 && !badGradient) images.fill_(float.NaN);
            if (i == 0) Assert.True(step1.Run(images, boxes, labels, pads).Update!.Value.Applied);
            rows.Add(step2.RunDeferred(images, boxes, labels, pads));
        }
        var read = Read(step2, [.. rows]);
        Assert.Equal([true, false, false, false], read.Select(r => r.Applied));
        Assert.Equal([false, true, true, true], read.Select(r => r.Halted));
        Assert.Equal(badGradient, double.IsFinite(read[1].Losses.Total));
        Assert.Equal([true, false, true, true], read.Select(r => r.GradientsFinite));
        AssertBitEqualWeights(m1, m2);
        Assert.All(sgd1.MomentumBuffers, kv => Assert.True(kv.Value.equal(sgd2.MomentumBuffers[kv.Key]).all().item<bool>(), kv.Key));
        var bad = step2.FirstRefusedGradient();
        if (badGradient)
        {
            Assert.Equal("bbox_head.gfl_cls.bias", bad!.Parameter);
            Assert.Equal(1, bad.Nan);
        }
    }
}
