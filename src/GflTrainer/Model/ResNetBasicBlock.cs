using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GflTrainer.Model;

/// <summary>ResNet-18/34 residual block (He et al. 2016): 3x3 conv -> BN -> ReLU -> 3x3 conv -> BN, plus the
/// identity or <c>downsample</c> branch, ReLU after the sum. Field names are torchvision's state-dict keys
/// (<c>conv1</c>, <c>bn1</c>, <c>conv2</c>, <c>bn2</c>, <c>downsample.0/1</c>).</summary>
internal sealed class ResNetBasicBlock : Module<Tensor, Tensor>
{
    /// <summary>Output channels = planes x expansion (1 for the basic block).</summary>
    public const int Expansion = 1;

    private readonly Conv2d conv1;
    private readonly BatchNorm2d bn1;
    private readonly Conv2d conv2;
    private readonly BatchNorm2d bn2;

    /// <summary>The BatchNorm on the residual branch's output (bn2), which zero_init_residual starts at 0.</summary>
    public BatchNorm2d ResidualNorm => bn2;
    private readonly Sequential? downsample;

    public ResNetBasicBlock(long inChannels, long planes, long stride, Sequential? downsample) : base(nameof(ResNetBasicBlock))
    {
        conv1 = nn.Conv2d(inChannels, planes, 3, stride: stride, padding: 1, bias: false);
        bn1 = nn.BatchNorm2d(planes);
        conv2 = nn.Conv2d(planes, planes, 3, padding: 1, bias: false);
        bn2 = nn.BatchNorm2d(planes);
        this.downsample = downsample;
        RegisterComponents();
    }

    /// <param name="x">(N, C_in, H, W).</param>
    /// <returns>(N, planes, ceil(H/stride), ceil(W/stride)).</returns>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var y = ConvBatchNorm.Forward(conv1, bn1, x).relu_();
        y = ConvBatchNorm.Forward(conv2, bn2, y);
        var identity = downsample is null ? x : ConvBatchNorm.Forward(downsample, x);
        return y.add_(identity).relu_().MoveToOuterDisposeScope();
    }
}
