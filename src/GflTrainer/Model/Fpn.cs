using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GflTrainer.Model;

/// <summary>Feature Pyramid Network (Lin et al. 2017) as mmdetection's
/// <c>FPN(start_level=1, add_extra_convs='on_output', num_outs=5)</c>: 1x1 laterals on C3..C5, top-down sum with
/// nearest upsampling to the lateral's exact size (odd sizes work), 3x3 output convs -> P3..P5, then P6 = 3x3 s2 conv
/// on the P5 <i>output</i> (GFL, ATSS) or on C5 itself (<c>'on_input'</c>, RetinaNet) and P7 = 3x3 s2 conv on P6.
/// The reference configs keep <c>relu_before_extra_convs=False</c>, so no ReLU sits between P6 and P7. Keys:
/// <c>lateral_convs.i.conv</c>, <c>fpn_convs.i.conv</c>.</summary>
internal sealed class Fpn : Module<IReadOnlyList<Tensor>, IReadOnlyList<Tensor>>
{
    private readonly ModuleList<ConvModule> lateral_convs;
    private readonly ModuleList<ConvModule> fpn_convs;
    private readonly int _inputLevels;
    private readonly bool _extraOnInput;

    /// <summary>Number of output levels (P3..P7 = 5).</summary>
    public int OutputLevels { get; }

    /// <param name="inChannels">channels of each input level (C3, C4, C5).</param>
    /// <param name="outChannels">channels of every output level (reference: 256).</param>
    /// <param name="outputLevels">total outputs; the ones beyond the inputs are extra stride-2 convs (reference: 5).</param>
    /// <param name="extraOnInput">the first extra conv reads the last input (C5, 'on_input') instead of the last output.</param>
    public Fpn(IReadOnlyList<long> inChannels, long outChannels = 256, int outputLevels = 5, bool extraOnInput = false) : base(nameof(Fpn))
    {
        if (outputLevels < inChannels.Count)
            throw new ArgumentOutOfRangeException(nameof(outputLevels), $"FPN num_outs {outputLevels} is smaller than its {inChannels.Count} inputs");
        _inputLevels = inChannels.Count;
        _extraOnInput = extraOnInput;
        OutputLevels = outputLevels;
        lateral_convs = new ModuleList<ConvModule>(inChannels.Select(c => new ConvModule(c, outChannels, 1)).ToArray());
        var outputs = new List<ConvModule>();
        for (int i = 0; i < _inputLevels; i++) outputs.Add(new ConvModule(outChannels, outChannels, 3));
        // 'on_output': the first extra conv reads the last FPN output (256 channels); 'on_input': C5 (2048 for R50).
        for (int i = _inputLevels; i < outputLevels; i++)
            outputs.Add(new ConvModule(i == _inputLevels && extraOnInput ? inChannels[^1] : outChannels, outChannels, 3, stride: 2));
        fpn_convs = new ModuleList<ConvModule>(outputs.ToArray());
        RegisterComponents();
        InitializeWeights();
    }

    /// <summary>mmdetection FPN init: Xavier uniform (gain 1) on every conv, bias 0.</summary>
    private void InitializeWeights()
    {
        using var _ = no_grad();
        foreach (var conv in lateral_convs.Concat(fpn_convs))
        {
            nn.init.xavier_uniform_(conv.Weight);
            if (conv.Bias is not null) nn.init.zeros_(conv.Bias);
        }
    }

    /// <param name="features">[C3, C4, C5] from the backbone, (N, inChannels[i], H_i, W_i).</param>
    /// <returns>[P3..P7], each (N, outChannels, h_l, w_l); P6/P7 sizes are ceil-halvings of the previous level.</returns>
    public override IReadOnlyList<Tensor> forward(IReadOnlyList<Tensor> features)
    {
        if (features.Count != _inputLevels)
            throw new ArgumentException($"FPN expects {_inputLevels} feature maps, got {features.Count}", nameof(features));
        using var scope = NewDisposeScope();
        var laterals = new Tensor[_inputLevels];
        for (int i = 0; i < _inputLevels; i++) laterals[i] = lateral_convs[i].forward(features[i]);
        for (int i = _inputLevels - 1; i > 0; i--)
        {
            // Upsample to the exact size of the finer lateral (not scale_factor 2), so odd sizes line up.
            var upsampled = nn.functional.interpolate(laterals[i],
                size: new[] { laterals[i - 1].shape[2], laterals[i - 1].shape[3] }, mode: InterpolationMode.Nearest);
            laterals[i - 1] = laterals[i - 1] + upsampled;
        }
        var outputs = new List<Tensor>(OutputLevels);
        for (int i = 0; i < _inputLevels; i++) outputs.Add(fpn_convs[i].forward(laterals[i]));
        for (int i = _inputLevels; i < OutputLevels; i++)
            outputs.Add(fpn_convs[i].forward(i == _inputLevels && _extraOnInput ? features[^1] : outputs[i - 1]));
        foreach (var p in outputs) p.MoveToOuterDisposeScope();
        return outputs;
    }
}
