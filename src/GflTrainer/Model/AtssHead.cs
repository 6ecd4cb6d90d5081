using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GflTrainer.Model;

/// <summary>ATSS head (Zhang et al. 2020, mmdetection <c>ATSSHead</c>): the same two GroupNorm towers as GFL's, then
/// <c>atss_cls</c> (C sigmoid logits, Focal Loss), <c>atss_reg</c> (4 box deltas of the DeltaXYWH coder, times the
/// level's <c>Scale</c>) and <c>atss_centerness</c> (1 logit, BCE against the centerness target) on the regression
/// tower; one anchor per location. Keys: <c>cls_convs.i.conv/gn</c>, <c>reg_convs.i.conv/gn</c>, <c>atss_cls</c>,
/// <c>atss_reg</c>, <c>atss_centerness</c>, <c>scales.l.scale</c>: mmdetection's, so its checkpoints convert.</summary>
internal sealed class AtssHead : DenseHead
{
    private readonly ModuleList<ConvModule> cls_convs;
    private readonly ModuleList<ConvModule> reg_convs;
    private readonly Conv2d atss_cls;
    private readonly Conv2d atss_reg;
    private readonly Conv2d atss_centerness;
    private readonly ModuleList<Scale> scales;

    public override int NumClasses { get; }

    /// <param name="levels">number of FPN levels, one Scale each (reference: 5).</param>
    /// <param name="priorProbability">initial foreground probability that sets the cls bias (reference: 0.01).</param>
    public AtssHead(int numClasses, long inChannels = 256, long featureChannels = 256, int stackedConvs = 4,
        int groupNormGroups = 32, int levels = 5, double priorProbability = 0.01) : base(nameof(AtssHead))
    {
        CheckTowerArguments(numClasses, featureChannels, groupNormGroups);
        NumClasses = numClasses;
        cls_convs = new ModuleList<ConvModule>(GroupNormTower(inChannels, featureChannels, stackedConvs, groupNormGroups));
        reg_convs = new ModuleList<ConvModule>(GroupNormTower(inChannels, featureChannels, stackedConvs, groupNormGroups));
        atss_cls = nn.Conv2d(featureChannels, numClasses, 3, padding: 1);
        atss_reg = nn.Conv2d(featureChannels, 4, 3, padding: 1);
        atss_centerness = nn.Conv2d(featureChannels, 1, 3, padding: 1);
        scales = new ModuleList<Scale>(Enumerable.Range(0, levels).Select(_ => new Scale(1.0f)).ToArray());
        RegisterComponents();
        // mmdetection's module order: towers, atss_cls, atss_reg, atss_centerness.
        InitializeWeights(cls_convs.Concat(reg_convs), atss_cls, [atss_reg, atss_centerness], priorProbability);
    }

    /// <param name="features">[P3..P7], (N, inChannels, h_l, w_l).</param>
    /// <returns>per level: class logits (N, C, h_l, w_l), scaled deltas (N, 4, h_l, w_l) as float32 (mmdetection's
    /// <c>.float()</c>) and centerness logits (N, 1, h_l, w_l).</returns>
    public override HeadOutputs forward(IReadOnlyList<Tensor> features)
    {
        if (features.Count != scales.Count)
            throw new ArgumentException($"ATSS head has {scales.Count} level scales but got {features.Count} feature maps", nameof(features));
        var classScores = new Tensor[features.Count];
        var boxPredictions = new Tensor[features.Count];
        var centerness = new Tensor[features.Count];
        for (int level = 0; level < features.Count; level++)
        {
            using var scope = NewDisposeScope();
            var clsFeature = ReleasingChain.Forward(cls_convs, features[level]);
            var regFeature = ReleasingChain.Forward(reg_convs, features[level]);
            classScores[level] = atss_cls.forward(clsFeature).MoveToOuterDisposeScope();
            boxPredictions[level] = scales[level].forward(atss_reg.forward(regFeature)).to_type(ScalarType.Float32).MoveToOuterDisposeScope();
            centerness[level] = atss_centerness.forward(regFeature).MoveToOuterDisposeScope();
        }
        return new HeadOutputs(classScores, boxPredictions) { Centerness = centerness };
    }
}
