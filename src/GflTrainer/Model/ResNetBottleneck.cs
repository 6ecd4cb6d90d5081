using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GflTrainer.Model;

/// <summary>ResNet-50/101 bottleneck block, 'pytorch' style (torchvision v1.5, mmdetection <c>style='pytorch'</c>):
/// 1x1 -> BN -> ReLU -> 3x3 (carries the stride) -> BN -> ReLU -> 1x1 (x4 channels) -> BN, plus identity or
/// <c>downsample</c>, ReLU after the sum. Field names are torchvision's state-dict keys.</summary>
internal sealed class ResNetBottleneck : Module<Tensor, Tensor>
{
    /// <summary>Output channels = planes x 4.</summary>
    public const int Expansion = 4;

    private readonly Conv2d conv1;
    private readonly BatchNorm2d bn1;
    private readonly Conv2d conv2;
    private readonly BatchNorm2d bn2;
    private readonly Conv2d conv3;
    private readonly BatchNorm2d bn3;

    /// <summary>The BatchNorm on the residual branch's output (bn3), which zero_init_residual starts at 0.</summary>
    public BatchNorm2d ResidualNorm => bn3;
    private readonly Sequential? downsample;

    public ResNetBottleneck(long inChannels, long planes, long stride, Sequential? downsample) : base(nameof(ResNetBottleneck))
    {
        conv1 = nn.Conv2d(inChannels, planes, 1, bias: false);
        bn1 = nn.BatchNorm2d(planes);
        // The stride sits on the 3x3 conv ('pytorch' style), not on the first 1x1 ('caffe' style).
        conv2 = nn.Conv2d(planes, planes, 3, stride: stride, padding: 1, bias: false);
        bn2 = nn.BatchNorm2d(planes);
        conv3 = nn.Conv2d(planes, planes * Expansion, 1, bias: false);
        bn3 = nn.BatchNorm2d(planes * Expansion);
        this.downsample = downsample;
        RegisterComponents();
    }

    /// <param name="x">(N, C_in, H, W).</param>
    /// <returns>(N, 4 planes, ceil(H/stride), ceil(W/stride)).</returns>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        // In-place ReLU as torchvision's ReLU(inplace=True): the (BN-folded) conv's backward needs its input, not its
        // output, and a fresh activation-sized tensor per ReLU costs an allocation and its page faults.
        var y = ConvBatchNorm.Forward(conv1, bn1, x).relu_();
        y = ConvBatchNorm.Forward(conv2, bn2, y).relu_();
        y = ConvBatchNorm.Forward(conv3, bn3, y);
        var identity = downsample is null ? x : ConvBatchNorm.Forward(downsample, x);
        return y.add_(identity).relu_().MoveToOuterDisposeScope();
    }
}
