using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GflTrainer.Model;

/// <summary>A dense (one-stage) detection head over the FPN levels: what GFL, ATSS and RetinaNet share (mmdetection's
/// <c>AnchorHead</c> family). Each maps [P3..P7] to per-level raw outputs (<see cref="HeadOutputs"/>); what they mean is
/// the business of the head's loss and post-processing.</summary>
internal abstract class DenseHead(string name) : Module<IReadOnlyList<Tensor>, HeadOutputs>(name)
{
    /// <summary>Number of foreground classes C (sigmoid classifiers, no background channel).</summary>
    public abstract int NumClasses { get; }

    /// <summary>The arguments every GroupNorm-tower head rejects: no classes, groups that do not divide the channels.</summary>
    protected static void CheckTowerArguments(int numClasses, long featureChannels, int groupNormGroups)
    {
        if (numClasses < 1) throw new ArgumentOutOfRangeException(nameof(numClasses), $"num_classes {numClasses} must be at least 1");
        if (featureChannels % groupNormGroups != 0)
            throw new ArgumentException($"head feature channels {featureChannels} are not divisible by {groupNormGroups} GroupNorm groups");
    }

    /// <summary>The classification and regression towers of mmdetection's GFL/ATSS heads: <paramref name="depth"/> x
    /// conv3x3 -> GroupNorm -> ReLU, the first reading the FPN's channels.</summary>
    protected static ConvModule[] GroupNormTower(long inChannels, long channels, int depth, int groups) =>
        Enumerable.Range(0, depth).Select(i => new ConvModule(i == 0 ? inChannels : channels, channels, 3, groupNormGroups: groups)).ToArray();

    /// <summary>mmdetection's head init (<c>init_cfg</c> Normal(Conv2d, std 0.01), bias 0): every tower conv and every
    /// predictor, except the classifier's bias -log((1 - p) / p), so that the initial sigmoid is the prior p (Focal
    /// Loss init, Lin et al. 2017). GroupNorms keep gamma 1, beta 0.</summary>
    protected static void InitializeWeights(IEnumerable<ConvModule> towers, Conv2d classifier, IEnumerable<Conv2d> predictors,
        double priorProbability)
    {
        using var _ = no_grad();
        foreach (var conv in towers)
        {
            nn.init.normal_(conv.Weight, 0, 0.01);
            if (conv.Bias is { } bias) nn.init.zeros_(bias);
        }
        nn.init.normal_(classifier.weight, 0, 0.01);
        nn.init.constant_(classifier.bias, -Math.Log((1 - priorProbability) / priorProbability));
        foreach (var p in predictors)
        {
            nn.init.normal_(p.weight, 0, 0.01);
            nn.init.zeros_(p.bias);
        }
    }
}
