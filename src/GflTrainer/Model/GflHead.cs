using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GflTrainer.Model;

/// <summary>GFL head (Li et al. 2020, "Generalized Focal Loss", mmdetection <c>GFLHead</c>): two towers of
/// <c>stackedConvs</c> conv3x3 -> GroupNorm(32) -> ReLU (classification and regression), shared across levels;
/// <c>gfl_cls</c> predicts the joint class-IoU score (sigmoid logits, no background channel) and <c>gfl_reg</c>
/// 4 (R+1) distribution logits, multiplied by the level's learnable <c>Scale</c> before any softmax.
/// Keys: <c>cls_convs.i.conv/gn</c>, <c>reg_convs.i.conv/gn</c>, <c>gfl_cls</c>, <c>gfl_reg</c>, <c>scales.l.scale</c>.</summary>
internal sealed class GflHead : DenseHead
{
    private readonly ModuleList<ConvModule> cls_convs;
    private readonly ModuleList<ConvModule> reg_convs;
    private readonly Conv2d gfl_cls;
    private readonly Conv2d gfl_reg;
    private readonly ModuleList<Scale> scales;

    /// <summary>Number of foreground classes C.</summary>
    public override int NumClasses { get; }

    /// <summary>Largest bin index R of the distance distribution (reference: 16, so R + 1 = 17 bins per side).</summary>
    public int RegMax { get; }

    /// <param name="levels">number of FPN levels, one Scale each (reference: 5).</param>
    /// <param name="priorProbability">initial foreground probability that sets the cls bias (reference: 0.01).</param>
    public GflHead(int numClasses, long inChannels = 256, long featureChannels = 256, int stackedConvs = 4,
        int groupNormGroups = 32, int regMax = 16, int levels = 5, double priorProbability = 0.01) : base(nameof(GflHead))
    {
        CheckTowerArguments(numClasses, featureChannels, groupNormGroups);
        if (regMax < 1) throw new ArgumentOutOfRangeException(nameof(regMax), $"reg_max {regMax} must be at least 1");
        NumClasses = numClasses;
        RegMax = regMax;
        cls_convs = new ModuleList<ConvModule>(GroupNormTower(inChannels, featureChannels, stackedConvs, groupNormGroups));
        reg_convs = new ModuleList<ConvModule>(GroupNormTower(inChannels, featureChannels, stackedConvs, groupNormGroups));
        gfl_cls = nn.Conv2d(featureChannels, numClasses, 3, padding: 1);
        gfl_reg = nn.Conv2d(featureChannels, 4 * (regMax + 1), 3, padding: 1);
        scales = new ModuleList<Scale>(Enumerable.Range(0, levels).Select(_ => new Scale(1.0f)).ToArray());
        RegisterComponents();
        InitializeWeights(cls_convs.Concat(reg_convs), gfl_cls, [gfl_reg], priorProbability);
    }

    /// <param name="features">[P3..P7], (N, inChannels, h_l, w_l).</param>
    /// <returns>per level: class logits (N, C, h_l, w_l) and scaled bin logits (N, 4(R+1), h_l, w_l) as float32.</returns>
    public override HeadOutputs forward(IReadOnlyList<Tensor> features)
    {
        if (features.Count != scales.Count)
            throw new ArgumentException($"GFL head has {scales.Count} level scales but got {features.Count} feature maps", nameof(features));
        var classScores = new Tensor[features.Count];
        var boxPredictions = new Tensor[features.Count];
        for (int level = 0; level < features.Count; level++)
        {
            using var scope = NewDisposeScope();
            var clsFeature = ReleasingChain.Forward(cls_convs, features[level]);
            var regFeature = ReleasingChain.Forward(reg_convs, features[level]);
            classScores[level] = gfl_cls.forward(clsFeature).MoveToOuterDisposeScope();
            boxPredictions[level] = scales[level].forward(gfl_reg.forward(regFeature)).to_type(ScalarType.Float32)
                .MoveToOuterDisposeScope();
        }
        return new HeadOutputs(classScores, boxPredictions);
    }
}
