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
            anchorsPerLocation: m.Head.ScalesPerOctave * m.Head.Ratios.Count);
    }
}
