using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GflTrainer.Model;

/// <summary>RetinaNet head (Lin et al. 2017, mmdetection <c>RetinaHead</c>): two towers of <c>stacked_convs</c> x
/// conv3x3 (with bias) -> ReLU, no normalisation (norm_cfg None), then <c>retina_cls</c> (A·C sigmoid logits, Focal
/// Loss) and <c>retina_reg</c> (A·4 DeltaXYWH deltas) for the A anchors of each location; no per-level Scale. Keys:
/// <c>cls_convs.i.conv</c>, <c>reg_convs.i.conv</c>, <c>retina_cls</c>, <c>retina_reg</c>: mmdetection's, so its
/// <c>retinanet_r50_fpn_1x_coco</c> checkpoints convert.</summary>
internal sealed class RetinaHead : DenseHead
{
    private readonly ModuleList<ConvModule> cls_convs;
    private readonly ModuleList<ConvModule> reg_convs;
    private readonly Conv2d retina_cls;
    private readonly Conv2d retina_reg;

    public override int NumClasses { get; }

    /// <summary>Anchors per location A (9: 3 ratios x 3 scales).</summary>
    public int AnchorsPerLocation { get; }

    /// <param name="priorProbability">initial foreground probability that sets the cls bias (reference: 0.01).</param>
    public RetinaHead(int numClasses, long inChannels = 256, long featureChannels = 256, int stackedConvs = 4,
        int anchorsPerLocation = 9, double priorProbability = 0.01) : base(nameof(RetinaHead))
    {
        if (numClasses < 1) throw new ArgumentOutOfRangeException(nameof(numClasses), $"num_classes {numClasses} must be at least 1");
        if (anchorsPerLocation < 1) throw new ArgumentOutOfRangeException(nameof(anchorsPerLocation), "at least one anchor per location");
        NumClasses = numClasses;
        AnchorsPerLocation = anchorsPerLocation;
        cls_convs = new ModuleList<ConvModule>(ReluTower(inChannels, featureChannels, stackedConvs));
        reg_convs = new ModuleList<ConvModule>(ReluTower(inChannels, featureChannels, stackedConvs));
        var towerOut = stackedConvs > 0 ? featureChannels : inChannels;
        retina_cls = nn.Conv2d(towerOut, anchorsPerLocation * numClasses, 3, padding: 1);
        retina_reg = nn.Conv2d(towerOut, anchorsPerLocation * 4, 3, padding: 1);
        RegisterComponents();
        InitializeWeights(cls_convs.Concat(reg_convs), retina_cls, [retina_reg], priorProbability);
    }

    /// <summary>mmdetection's RetinaHead towers: conv3x3 with bias -> ReLU, the first reading the FPN's channels.</summary>
    private static ConvModule[] ReluTower(long inChannels, long channels, int depth) =>
        Enumerable.Range(0, depth).Select(i => new ConvModule(i == 0 ? inChannels : channels, channels, 3, relu: true)).ToArray();

    /// <param name="features">[P3..P7], (N, inChannels, h_l, w_l).</param>
    /// <returns>per level: class logits (N, A·C, h_l, w_l) and deltas (N, A·4, h_l, w_l); channel a·C + c is anchor a's
    /// class c, as mmdetection lays them out.</returns>
    public override HeadOutputs forward(IReadOnlyList<Tensor> features)
    {
        var classScores = new Tensor[features.Count];
        var boxPredictions = new Tensor[features.Count];
        for (int level = 0; level < features.Count; level++)
        {
            using var scope = NewDisposeScope();
            var clsFeature = ReleasingChain.Forward(cls_convs, features[level]);
            var regFeature = ReleasingChain.Forward(reg_convs, features[level]);
            classScores[level] = retina_cls.forward(clsFeature).MoveToOuterDisposeScope();
            boxPredictions[level] = retina_reg.forward(regFeature).MoveToOuterDisposeScope();
        }
        return new HeadOutputs(classScores, boxPredictions);
    }
}
