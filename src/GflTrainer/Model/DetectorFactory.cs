using GflTrainer.Config;

namespace GflTrainer.Model;

/// <summary>The one place where the model configuration becomes the detector (its loss is built by
/// <c>GflLoss.FromConfig</c> in Training, its post-processing by <c>GflPostprocessor.FromConfig</c> in Inference: the
/// model layer knows neither). The configuration has passed <c>ConfigValidator</c>: levels, strides and the FPN variant
/// are the reference's.</summary>
internal static class DetectorFactory
{
    public static GflDetector CreateDetector(ModelConfig m)
    {
        return GflDetector.Create(
            depth: m.Backbone.Depth,
            numClasses: m.Head.NumClasses,
            regMax: m.Head.RegMax,
            frozenStages: m.Backbone.FrozenStages,
            normEval: m.Backbone.NormEval,
            fpnChannels: m.Neck.OutChannels,
            featChannels: m.Head.FeatChannels,
            stackedConvs: m.Head.StackedConvs,
            groupNormGroups: m.Head.NormGroups,
            backboneBaseChannels: m.Backbone.BaseChannels,
            priorProbability: m.Head.PriorProb,
            zeroInitResidual: m.Backbone.ZeroInitResidual,
            headType: m.Head.Type,
            extraConvsOnInput: m.Neck.AddExtraConvs == ExtraConvsSource.OnInput,
            anchorsPerLocation: AnchorGenerator.FromConfig(m.Head).AnchorsPerLocation);
    }

    /// <summary>The box coder of the head's regression outputs: ATSS's DeltaXYWH (stds 0.1, 0.1, 0.2, 0.2),
    /// RetinaNet's (stds 1), or null for GFL (distances from the anchor centre, no coder).</summary>
    public static Boxes.DeltaXywhBoxCoder? BoxCoder(HeadType head) => head switch
    {
        HeadType.Atss => Boxes.DeltaXywhBoxCoder.Atss,
        HeadType.Retinanet => new Boxes.DeltaXywhBoxCoder(),
        _ => null,
    };
}
