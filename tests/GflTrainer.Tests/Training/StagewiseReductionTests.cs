using GflTrainer.Config;
using GflTrainer.Model;
using GflTrainer.Runtime;
using GflTrainer.Runtime.Native;
using GflTrainer.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Training;

/// <summary>Gradients reduced stage by stage during backward (train.dist.overlap_backward): the graph cut into
/// <see cref="BackwardStages"/> gives the gradients of one backward (up to the rounding of one sum per cut), and every
/// part of the gradient buffer is handed to the collective exactly once, only after backward has completed it. The collective here is a rank whose
/// peer has the same gradients (the mean is the value itself) and which records what it was given when: a reduction
/// started early would record a partial gradient.</summary>
public sealed class StagewiseReductionTests : IDisposable
{
    readonly List<IDisposable> _owned = [];

    public void Dispose()
    {
        foreach (var o in _owned) o.Dispose();
    }

    /// <summary>World size 2, both ranks with the same gradients. Records each started span: its offset in the flat
    /// gradient buffer and its values at the start.</summary>
    sealed class MirroredRank(Func<Tensor> gradients) : ICollective
    {
        public readonly List<(long Offset, Tensor Values)> Started = [];
        public int WholeReductions, Waits;
        public int Rank => 0;
        public int WorldSize => 2;
        // Counts the gradient buffer's; the losses' normalisers (0-d) go through here too, and their mean is themselves.
        public void AllReduceMean(IReadOnlyList<Tensor> tensors) =>
            WholeReductions += tensors.Count(t => TensorData.Pointer(t) == TensorData.Pointer(gradients()));
        public double[] AllReduceMean(double[] values) => (double[])values.Clone();
        public void StartAllReduceMean(Tensor contiguous)
        {
            long offset = (TensorData.Pointer(contiguous) - TensorData.Pointer(gradients())) / contiguous.element_size();
            Started.Add((offset, contiguous.detach().clone().DetachFromDisposeScope()));
        }
        public void WaitAllReduces() => Waits++;
        public void Broadcast(IReadOnlyList<Tensor> tensors, int root = 0) { }
        public byte[][] AllGather(byte[] mine) => [mine, mine];
        public void Barrier() { }
        public void Dispose()
        {
            foreach (var (_, v) in Started) v.Dispose();
        }
    }

    static GflConfig Tiny(int depth, int frozenStages, bool overlap = true, AmpMode amp = AmpMode.Off) => new()
    {
        Model = new ModelConfig
        {
            Backbone = new BackboneConfig { Depth = depth, BaseChannels = 8, FrozenStages = frozenStages, NormEval = frozenStages >= 0 },
            Neck = new NeckConfig { OutChannels = 16 },
            Head = new HeadConfig { NumClasses = 3, FeatChannels = 16, StackedConvs = 1, NormGroups = 4 },
        },
        Train = new TrainConfig { Amp = amp, Dist = new DistConfig { OverlapBackward = overlap } },
    };

    /// <summary>A model, its optimizer and its step; the flat gradients after backward and the all-reduce of each step are
    /// copied into the returned list.</summary>
    (GflDetector Model, Sgd Sgd, TrainStep Step, List<Tensor> Gradients) Build(GflConfig cfg, Func<Sgd, ICollective>? collective = null)
    {
        manual_seed(0);
        var model = DetectorFactory.CreateDetector(cfg.Model);
        model.train();
        var sgd = new Sgd(model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => (p.name, (Tensor)p.parameter)), 0.01, 0.9, 1e-4);
        _owned.Add(sgd);
        var c = collective?.Invoke(sgd);
        if (c is not null) _owned.Add(c);
        var seen = new List<Tensor>();
        var step = TrainStep.FromConfig(cfg, model, sgd, CPU, c, afterBackwardForTests: _ => seen.Add(sgd.Gradients.clone().DetachFromDisposeScope()));
        return (model, sgd, step, seen);
    }

    static void RunSteps(TrainStep step, int steps)
    {
        manual_seed(7);
        for (int i = 0; i < steps; i++)
        {
            using var scope = NewDisposeScope();
            var images = randn(2, 3, 64, 96);
            var boxes = new List<Tensor> { tensor(new float[,] { { 4, 4, 40, 30 }, { 50, 8, 90, 60 } }), tensor(new float[,] { { 10, 12, 50, 60 } }) };
            var labels = new List<Tensor> { tensor(new long[] { 0, 1 }), tensor(new long[] { 2 }) };
            Assert.True(step.Run(images, boxes, labels, [(64, 96), (64, 96)]).Update!.Value.Applied);
        }
    }

    static bool BitEqual(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.equal(b).all().item<bool>();

    /// <summary>R18 with every stage trainable (the stem and layer1 reduce with layer2), R50 with the reference's frozen
    /// stem and layer1, and fp16 AMP (the scaled loss's gradients reduce, then unscale). The baseline is the same rank
    /// reducing the whole buffer after backward (overlap_backward false): its loss normalisers take the same
    /// data-parallel path.</summary>
    [Theory]
    [InlineData(18, -1, AmpMode.Off)]
    [InlineData(50, 1, AmpMode.Off)]
    [InlineData(18, 1, AmpMode.Fp16)]
    public void EachStageReducesOnceComplete_AndTrainingMatchesOneReductionAfterBackward(int depth, int frozenStages, AmpMode amp)
    {
        using var scope = NewDisposeScope();
        MirroredRank? after = null, during = null;
        var whole = Build(Tiny(depth, frozenStages, overlap: false, amp), sgd => after = new MirroredRank(() => sgd.Gradients));
        var staged = Build(Tiny(depth, frozenStages, amp: amp), sgd => during = new MirroredRank(() => sgd.Gradients));
        RunSteps(whole.Step, 3);
        RunSteps(staged.Step, 3);

        // Without overlap: one reduction of the whole buffer per step after backward, nothing started.
        Assert.Equal(3, after!.WholeReductions);
        Assert.Empty(after.Started);

        // The same gradients up to the rounding of the one three-way sum at each cut (see BackwardStages): measured
        // 4e-8 of the largest gradient; a stage missing or counted twice is off by whole gradients.
        for (int s = 0; s < 3; s++)
        {
            double scale = whole.Gradients[s].abs().max().item<float>();
            double worst = (whole.Gradients[s] - staged.Gradients[s]).abs().max().item<float>();
            Assert.True(scale > 0 && worst <= 1e-6 * scale, $"step {s}: gradients differ by {worst:G3} (largest {scale:G3})");
        }
        foreach (var ((name, a), (_, b)) in whole.Sgd.Parameters.Zip(staged.Sgd.Parameters))
            Assert.True(a.allclose(b, rtol: 1e-5, atol: 1e-7), $"{name} differs after 3 steps");

        // Per step: 4 stages (neck + head, layer4, layer3, the rest), each one span of the buffer, the last part first;
        // together they cover the buffer once; each span's values at its start are the final gradients there.
        Assert.Equal(0, during!.WholeReductions);
        Assert.Equal(3, during.Waits);
        Assert.Equal(12, during.Started.Count);
        long total = staged.Sgd.Gradients.numel();
        for (int s = 0; s < 3; s++)
        {
            var spans = during.Started.Skip(4 * s).Take(4).ToList();
            Assert.Equal(total, spans[0].Offset + spans[0].Values.numel());
            Assert.True(spans.Zip(spans.Skip(1)).All(p => p.Second.Offset + p.Second.Values.numel() == p.First.Offset), "spans not back to back");
            Assert.Equal(0, spans[^1].Offset);
            foreach (var (offset, values) in spans)
                Assert.True(BitEqual(values, staged.Gradients[s].narrow(0, offset, values.numel())),
                    $"step {s}: the span at {offset} was started before backward completed it");
        }
        // The spans follow the model: the last holds the backbone's first trainable parameter, the first the head's last.
        var names = staged.Sgd.Parameters.Select(p => p.Name).ToList();
        Assert.StartsWith("bbox_head.", names[^1]);
        Assert.StartsWith(frozenStages < 0 ? "backbone.conv1." : "backbone.layer2.", names[0]);
    }

    /// <summary>One process never cuts the graph: nothing to overlap.</summary>
    [Fact]
    public void OneProcess_RunsOneBackward()
    {
        using var scope = NewDisposeScope();
        var single = Build(Tiny(18, 1));
        Assert.False(new OptimizerStep(single.Sgd, null, null).ReducesInBackward);
        using var stages = new BackwardStages();
        Assert.Throws<InvalidOperationException>(() => new OptimizerStep(single.Sgd, null, null).Backward(zeros(1, requires_grad: true).sum(), stages));
    }

    /// <summary>The ordering <see cref="BackwardStages.Backward"/> promises, on two layers with a cut between them: after
    /// stage 0 the second layer's gradient is final and the first's still zero; after stage 1 both are final. A cut
    /// whose owners were named on the wrong side would fail the first check.</summary>
    [Fact]
    public void Stages_CompleteTheLaterLayerFirst()
    {
        using var scope = NewDisposeScope();
        manual_seed(3);
        var first = nn.Linear(4, 5);
        var second = nn.Linear(5, 3);
        var x = randn(6, 4);
        Tensor Loss(Tensor h) => second.forward(h).pow(2).sum();

        Loss(first.forward(x)).backward();
        var reference = new[] { first.weight!.grad!.clone(), second.weight!.grad!.clone() };
        foreach (var p in first.parameters().Concat(second.parameters())) p.grad = zeros_like(p);

        using var stages = new BackwardStages();
        var cut = stages.Cut(first.forward(x), first);
        Assert.Equal(2, stages.Count);
        Assert.Same(first, Assert.Single(stages.OwnersOf(1)));
        var seen = new List<(bool First, bool Second)>();
        stages.Backward(Loss(cut), _ => seen.Add((BitEqual(first.weight!.grad!, reference[0]), BitEqual(second.weight!.grad!, reference[1]))));
        Assert.Equal([(false, true), (true, true)], seen);
        Assert.Null(cut.grad);   // released once used
    }

    /// <summary>No gradient flows through an input that needs none (behind frozen stages): no cut, one stage.</summary>
    [Fact]
    public void Cut_OfATensorWithoutGradient_IsNoCut()
    {
        using var scope = NewDisposeScope();
        using var stages = new BackwardStages();
        var x = randn(3);
        Assert.Same(x, stages.Cut(x));
        Assert.Equal(1, stages.Count);
    }
}
