using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GflTrainer.Model;

/// <summary>ResNet backbone (He et al. 2016) as mmdetection's <c>ResNet(style='pytorch', out_indices=(1,2,3))</c>:
/// parameter names equal torchvision's (<c>conv1</c>, <c>bn1</c>, <c>layer1.0.conv1</c>, ...,
/// <c>layerN.0.downsample.0/1</c>) minus <c>fc</c>, so torchvision ImageNet weights load 1:1.
/// Returns C3, C4, C5 (strides 8, 16, 32); layer1 (C2) is computed but not returned because the FPN starts at C3.</summary>
/// <remarks>
/// Freezing follows mmdetection's <c>_freeze_stages</c> and <c>train()</c>: the stem (conv1 + bn1) and
/// <c>layer1..layer{frozenStages}</c> get <c>requires_grad = false</c> and stay in eval mode; with
/// <c>normEval</c> every BatchNorm stays in eval mode even after <c>train()</c>, so BN normalizes with the
/// pretrained running statistics and never updates them (its affine weights still train outside frozen stages).
/// </remarks>
internal sealed class ResNet : Backbone
{
    private readonly Conv2d conv1;
    private readonly BatchNorm2d bn1;
    private readonly Sequential layer1;
    private readonly Sequential layer2;
    private readonly Sequential layer3;
    private readonly Sequential layer4;

    private readonly int _frozenStages;
    private readonly bool _normEval;

    /// <summary>Channels of C3, C4, C5.</summary>
    public override IReadOnlyList<long> OutChannels { get; }

    /// <summary>C3, C4, C5 are at strides 8, 16, 32 (stem 4, then layer2..layer4 each halve).</summary>
    public override IReadOnlyList<int> Strides { get; } = [8, 16, 32];

    /// <param name="depth">18, 34 (basic blocks) or 50, 101 (bottlenecks).</param>
    /// <param name="frozenStages">-1 freezes nothing, 0 the stem, k the stem and layer1..layerk (reference: 1).</param>
    /// <param name="normEval">keep every BatchNorm in eval mode during training (reference: true).</param>
    /// <param name="baseChannels">stem width and layer1 planes; 64 is the real network. Smaller values exist only so
    /// test fixtures of the same code path stay small (planes double per stage as in torchvision).</param>
    /// <param name="zeroInitResidual">start every block's last BatchNorm at weight 0 (mmdetection's default).</param>
    public ResNet(int depth = 50, int frozenStages = 1, bool normEval = true, int baseChannels = 64, bool zeroInitResidual = true)
        : base(nameof(ResNet))
    {
        (bool bottleneck, int[] blocks) = depth switch
        {
            18 => (false, new[] { 2, 2, 2, 2 }),
            34 => (false, new[] { 3, 4, 6, 3 }),
            50 => (true, new[] { 3, 4, 6, 3 }),
            101 => (true, new[] { 3, 4, 23, 3 }),
            _ => throw new ArgumentOutOfRangeException(nameof(depth), $"ResNet depth {depth} is not supported (expected 18, 34, 50 or 101)"),
        };
        if (frozenStages < -1 || frozenStages > 4)
            throw new ArgumentOutOfRangeException(nameof(frozenStages), $"frozen_stages {frozenStages} is out of range (expected -1..4)");
        if (baseChannels < 1)
            throw new ArgumentOutOfRangeException(nameof(baseChannels), $"ResNet base width {baseChannels} must be positive");
        _frozenStages = frozenStages;
        _normEval = normEval;

        conv1 = nn.Conv2d(3, baseChannels, 7, stride: 2, padding: 3, bias: false);
        bn1 = nn.BatchNorm2d(baseChannels);
        long inChannels = baseChannels;
        var layers = new Sequential[4];
        var outChannels = new long[4];
        for (int stage = 0; stage < 4; stage++)
        {
            long planes = (long)baseChannels << stage;
            long stride = stage == 0 ? 1 : 2;
            layers[stage] = MakeLayer(bottleneck, inChannels, planes, blocks[stage], stride);
            inChannels = planes * (bottleneck ? ResNetBottleneck.Expansion : ResNetBasicBlock.Expansion);
            outChannels[stage] = inChannels;
        }
        (layer1, layer2, layer3, layer4) = (layers[0], layers[1], layers[2], layers[3]);
        OutChannels = outChannels[1..];
        RegisterComponents();
        InitializeWeights(zeroInitResidual);
        FreezeStages();
    }

    private static Sequential MakeLayer(bool bottleneck, long inChannels, long planes, int blockCount, long stride)
    {
        long outChannels = planes * (bottleneck ? ResNetBottleneck.Expansion : ResNetBasicBlock.Expansion);
        var blocks = new List<(string, Module<Tensor, Tensor>)>(blockCount);
        for (int i = 0; i < blockCount; i++)
        {
            Sequential? downsample = null;
            if (i == 0 && (stride != 1 || inChannels != outChannels))
                downsample = nn.Sequential(
                    ("0", nn.Conv2d(inChannels, outChannels, 1, stride: stride, bias: false)),
                    ("1", nn.BatchNorm2d(outChannels)));
            long blockIn = i == 0 ? inChannels : outChannels;
            long blockStride = i == 0 ? stride : 1;
            Module<Tensor, Tensor> block = bottleneck
                ? new ResNetBottleneck(blockIn, planes, blockStride, downsample)
                : new ResNetBasicBlock(blockIn, planes, blockStride, downsample);
            blocks.Add((i.ToString(System.Globalization.CultureInfo.InvariantCulture), block));
        }
        return nn.Sequential(blocks);
    }

    /// <summary>Random init used when no pretrained weights are loaded, as mmdetection's ResNet with
    /// <c>pretrained=None</c> (mmdet/models/backbones/resnet.py): Kaiming normal (fan_out, ReLU gain) for convs, BN
    /// weight 1 and bias 0, and, with <c>zero_init_residual=True</c> (mmdetection's default; torchvision's is False),
    /// weight and bias 0 for the last BN of every block (norm2 / norm3), so that each residual block starts as the
    /// identity (Goyal et al. 2017). Pretrained weights, loaded afterwards, replace all of it.</summary>
    private void InitializeWeights(bool zeroInitResidual)
    {
        using var _ = no_grad();
        foreach (var module in modules())
        {
            switch (module)
            {
                case Conv2d conv:
                    nn.init.kaiming_normal_(conv.weight, mode: nn.init.FanInOut.FanOut, nonlinearity: nn.init.NonlinearityType.ReLU);
                    break;
                case BatchNorm2d bn:
                    nn.init.ones_(bn.weight);
                    nn.init.zeros_(bn.bias);
                    break;
            }
        }
        if (!zeroInitResidual) return;
        foreach (var layer in new[] { layer1, layer2, layer3, layer4 })
        foreach (var block in layer.children())
        {
            var norm = block switch
            {
                ResNetBasicBlock b => b.ResidualNorm,
                ResNetBottleneck b => b.ResidualNorm,
                _ => throw new InvalidOperationException("unexpected ResNet block " + block.GetType().Name),
            };
            nn.init.zeros_(norm.weight);
            nn.init.zeros_(norm.bias);
        }
    }

    private IEnumerable<Module> FrozenModules()
    {
        if (_frozenStages >= 0)
        {
            yield return conv1;
            yield return bn1;
        }
        var layers = new[] { layer1, layer2, layer3, layer4 };
        for (int stage = 1; stage <= _frozenStages; stage++) yield return layers[stage - 1];
    }

    /// <summary>mmdetection <c>_freeze_stages</c>: frozen modules stop requiring gradients and run in eval mode.</summary>
    private void FreezeStages()
    {
        foreach (var module in FrozenModules())
        {
            module.eval();
            foreach (var p in module.parameters()) p.requires_grad = false;
        }
    }

    /// <summary>mmdetection <c>ResNet.train</c>: re-apply the freeze and, under <c>normEval</c>, put every BatchNorm
    /// back in eval mode, so running statistics never move.</summary>
    public override void train(bool on = true)
    {
        base.train(on);
        FreezeStages();
        if (on && _normEval)
            foreach (var module in modules())
                if (module is BatchNorm2d bn) bn.eval();
    }

    /// <param name="x">(N, 3, H, W) normalized images.</param>
    /// <returns>[C3, C4, C5]: (N, OutChannels[i], H_i, W_i) at strides 8, 16, 32 (each a ceil-halving of the previous).</returns>
    public override IReadOnlyList<Tensor> forward(Tensor x) => Forward(x, null);

    /// <summary>Cuts after layer2, layer3 and layer4: R50's trainable backbone parameters split 1.2 / 7.1 / 15.0 M (stem
    /// and layer1 frozen), so in a data-parallel run the large layer4 and layer3 reduce while backward runs through the
    /// stages before them.</summary>
    public override IReadOnlyList<Tensor> Forward(Tensor x, BackwardStages? stages)
    {
        using var scope = NewDisposeScope();
        var stem = ConvBatchNorm.Forward(conv1, bn1, x).relu_();
        var y = nn.functional.max_pool2d(stem, 3, stride: 2, padding: 1);
        stem.Dispose();
        var c2 = Stage(layer1, y);
        y.Dispose();
        var c3 = Stage(layer2, c2);
        c2.Dispose();
        if (stages is not null) c3 = stages.Cut(c3, conv1, bn1, layer1, layer2);
        var c4 = Stage(layer3, c3);
        if (stages is not null) c4 = stages.Cut(c4, layer3);
        var c5 = Stage(layer4, c4);
        if (stages is not null) c5 = stages.Cut(c5, layer4);
        return new[] { c3.MoveToOuterDisposeScope(), c4.MoveToOuterDisposeScope(), c5.MoveToOuterDisposeScope() };
    }

    private static Tensor Stage(Sequential layer, Tensor x) => ReleasingChain.Forward(layer.children().Cast<Module<Tensor, Tensor>>(), x);
}
