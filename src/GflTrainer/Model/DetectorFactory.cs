using GflTrainer.Config;

namespace GflTrainer.Model;

/// <summary>The one place where the model configuration becomes the detector (its loss is built by
/// <c>GflLoss.FromConfig</c> in Training, its post-processing by <c>GflPostprocessor.FromConfig</c> in Inference: the
/// model layer knows neither).</summary>
internal static class DetectorFactory
{
    public static GflDetector CreateDetector(ModelConfig m)
    {
        if (m.Neck.NumOuts != m.Head.Strides.Count)
            throw new GflConfigException($"model.neck.num_outs ({m.Neck.NumOuts}) must equal the number of model.head.strides ({m.Head.Strides.Count})") { Key = "model.neck.num_outs" };
        for (int i = 0; i < m.Head.Strides.Count; i++)
            if (m.Head.Strides[i] != 8 << i)
                throw new GflConfigException($"model.head.strides: the FPN levels P3..P7 have strides 8,16,32,64,128; got [{string.Join(",", m.Head.Strides)}]") { Key = "model.head.strides" };
        if (m.Head.OctaveBaseScale != 8)
            throw new GflConfigException($"model.head.octave_base_scale: only 8 (the GFL reference, anchors of side 8 x stride) is implemented, got {m.Head.OctaveBaseScale}") { Key = "model.head.octave_base_scale" };
        if (m.Neck.ReluBeforeExtraConvs || m.Neck.AddExtraConvs != ExtraConvsSource.OnOutput || m.Neck.StartLevel != 1)
            throw new GflConfigException("model.neck: only the GFL reference FPN is implemented (start_level 1, add_extra_convs on_output, relu_before_extra_convs false)") { Key = "model.neck" };
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
            zeroInitResidual: m.Backbone.ZeroInitResidual);
    }
}
