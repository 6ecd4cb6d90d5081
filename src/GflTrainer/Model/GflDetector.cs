using GflTrainer.Config;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GflTrainer.Model;

/// <summary>The one-stage detector: ResNet backbone -> FPN neck -> dense head (GFL, or the ATSS or RetinaNet baseline).
/// State-dict keys are <c>backbone.*</c>, <c>neck.*</c>, <c>bbox_head.*</c>, exactly mmdetection's, so a converted
/// <c>gfl_r50_fpn_1x_coco</c>, <c>atss_r50_fpn_1x_coco</c> or <c>retinanet_r50_fpn_1x_coco</c> checkpoint maps 1:1.</summary>
internal sealed class GflDetector : Module<Tensor, HeadOutputs>
{
    private readonly Backbone backbone;
    private readonly Fpn neck;
    private readonly DenseHead bbox_head;

    /// <summary>The backbone (C3..C5 for ResNet).</summary>
    public Backbone Backbone => backbone;

    /// <summary>The FPN neck (P3..P7).</summary>
    public Fpn Neck => neck;

    /// <summary>The dense head (<see cref="GflHead"/>, <see cref="AtssHead"/> or <see cref="RetinaHead"/>).</summary>
    public DenseHead Head => bbox_head;

    /// <summary>Strides of the head's levels in input pixels: the backbone's, then doubling for each extra FPN level
    /// (P3..P7 = 8..128 for ResNet).</summary>
    public IReadOnlyList<int> Strides { get; }

    private GflDetector(Backbone backbone, Fpn neck, DenseHead head) : base(nameof(GflDetector))
    {
        this.backbone = backbone;
        this.neck = neck;
        bbox_head = head;
        var strides = backbone.Strides.Take(neck.OutputLevels).ToList();
        while (strides.Count < neck.OutputLevels) strides.Add(strides[^1] * 2);   // stride-2 extra convs
        Strides = strides;
        RegisterComponents();
    }

    /// <summary>Builds the detector with the reference defaults of <c>gfl_r50_fpn_1x_coco</c>; weights are randomly
    /// initialised as mmdetection does before the pretrained backbone is loaded (see <c>WeightLoader</c>).</summary>
    /// <param name="depth">ResNet depth: 18, 34, 50 (reference) or 101.</param>
    /// <param name="numClasses">foreground classes (COCO: 80).</param>
    /// <param name="regMax">largest distribution bin R (reference: 16).</param>
    /// <param name="frozenStages">backbone stages frozen (reference: 1 = stem + layer1).</param>
    /// <param name="normEval">backbone BatchNorms stay in eval mode while training (reference: true).</param>
    /// <param name="fpnChannels">FPN and head width (reference: 256).</param>
    /// <param name="stackedConvs">convs per head tower (reference: 4).</param>
    /// <param name="groupNormGroups">GroupNorm groups in the head towers (reference: 32).</param>
    /// <param name="backboneBaseChannels">ResNet stem width (64 for the real network; smaller only for tests).</param>
    /// <param name="featChannels">head tower width (reference: 256 = the FPN width); null = <paramref name="fpnChannels"/>.</param>
    /// <param name="priorProbability">initial foreground probability of the classifier bias (reference: 0.01).</param>
    /// <param name="headType">GFL (the default) or the ATSS or RetinaNet baseline; <paramref name="regMax"/> is GFL's only.</param>
    /// <param name="extraConvsOnInput">FPN 'on_input' (RetinaNet): P6 from C5 instead of P5.</param>
    /// <param name="anchorsPerLocation">RetinaNet's A (9).</param>
    public static GflDetector Create(int depth = 50, int numClasses = 80, int regMax = 16, int frozenStages = 1,
        bool normEval = true, int fpnChannels = 256, int stackedConvs = 4, int groupNormGroups = 32,
        int backboneBaseChannels = 64, int? featChannels = null, double priorProbability = 0.01, bool zeroInitResidual = true,
        HeadType headType = HeadType.Gfl, bool extraConvsOnInput = false, int anchorsPerLocation = 1)
    {
        var backbone = new ResNet(depth, frozenStages, normEval, backboneBaseChannels, zeroInitResidual);
        var neck = new Fpn(backbone.OutChannels, fpnChannels, outputLevels: 5, extraConvsOnInput);
        DenseHead head = headType switch
        {
            HeadType.Gfl => new GflHead(numClasses, fpnChannels, featChannels ?? fpnChannels, stackedConvs, groupNormGroups, regMax,
                levels: 5, priorProbability),
            HeadType.Atss => new AtssHead(numClasses, fpnChannels, featChannels ?? fpnChannels, stackedConvs, groupNormGroups,
                levels: 5, priorProbability),
            HeadType.Retinanet => new RetinaHead(numClasses, fpnChannels, featChannels ?? fpnChannels, stackedConvs,
                anchorsPerLocation, priorProbability),
            _ => throw new ArgumentOutOfRangeException(nameof(headType), headType, "unknown head type"),
        };
        return new GflDetector(backbone, neck, head);
    }

    /// <param name="images">(N, 3, H, W) normalized, padded images (H, W multiples of 32 in the reference pipeline,
    /// though any size works).</param>
    /// <returns>per-level head outputs for P3..P7 (strides <see cref="Strides"/>).</returns>
    public override HeadOutputs forward(Tensor images) => Forward(images, null);

    /// <summary><see cref="forward"/> with the graph cut into <paramref name="stages"/> for backward (the backbone's
    /// stages; the neck and head are the last stage, the first to finish backward).</summary>
    public HeadOutputs Forward(Tensor images, BackwardStages? stages)
    {
        using var scope = NewDisposeScope();
        var outputs = bbox_head.forward(neck.forward(backbone.Forward(images, stages)));
        foreach (var t in outputs.ClassScores.Concat(outputs.BoxPredictions).Concat(outputs.Centerness ?? [])) t.MoveToOuterDisposeScope();
        return outputs;
    }
}
