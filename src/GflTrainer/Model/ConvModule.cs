using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GflTrainer.Model;

/// <summary>mmcv <c>ConvModule</c> in the three forms the detectors use: a bare conv with bias (FPN laterals and
/// outputs: no norm, no activation), conv (no bias) -> GroupNorm -> ReLU (GFL/ATSS head towers), or conv with bias ->
/// ReLU (RetinaNet's towers, norm_cfg None). Sub-module names <c>conv</c> and <c>gn</c> match mmcv's state-dict keys.</summary>
internal sealed class ConvModule : Module<Tensor, Tensor>
{
    private readonly Conv2d conv;
    private readonly GroupNorm? gn;
    private readonly bool _relu;

    /// <summary>Weight of the convolution (for initialization).</summary>
    public Parameter Weight => conv.weight!;

    /// <summary>Bias of the convolution; null when a norm follows (mmcv sets <c>bias = not with_norm</c>).</summary>
    public Parameter? Bias => conv.bias;

    /// <param name="groupNormGroups">null for a conv with bias; otherwise conv without bias, GroupNorm(groups), ReLU.</param>
    /// <param name="relu">a ReLU after the conv with bias (no norm); always true with a GroupNorm.</param>
    public ConvModule(long inChannels, long outChannels, long kernelSize, long stride = 1, int? groupNormGroups = null, bool relu = false)
        : base(nameof(ConvModule))
    {
        _relu = relu || groupNormGroups is not null;
        conv = nn.Conv2d(inChannels, outChannels, kernelSize, stride: stride, padding: kernelSize / 2,
            bias: groupNormGroups is null);
        if (groupNormGroups is int groups)
        {
            gn = nn.GroupNorm(groups, outChannels, eps: 1e-5);
            // TorchSharp 0.107's GroupNorm allocates its affine parameters with torch.empty and never fills them;
            // PyTorch (and so mmdetection) starts from gamma 1, beta 0.
            using var _ = no_grad();
            nn.init.ones_(gn.weight);
            nn.init.zeros_(gn.bias!);
        }
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        if (!_relu) return conv.forward(x);
        using var scope = NewDisposeScope();
        if (gn is null) return conv.forward(x).relu_().MoveToOuterDisposeScope();
        // In place, as mmcv's ConvModule (ReLU inplace=True): GroupNorm's backward does not need its output.
        return gn.forward(conv.forward(x)).relu_().MoveToOuterDisposeScope();
    }
}
