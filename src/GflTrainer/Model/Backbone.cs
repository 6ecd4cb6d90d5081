using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GflTrainer.Model;

/// <summary>What the detector needs of a backbone (detectron2's <c>Backbone.output_shape()</c>): the feature maps it
/// returns, finest first, with their channels and strides; the neck is sized from <see cref="OutChannels"/> and the
/// head's anchor strides continue <see cref="Strides"/>. A new backbone derives from this and is built in
/// <see cref="DetectorFactory"/>; its state-dict keys stay under <c>backbone.</c>.</summary>
internal abstract class Backbone(string name) : Module<Tensor, IReadOnlyList<Tensor>>(name)
{
    /// <summary>Channels of each returned feature map.</summary>
    public abstract IReadOnlyList<long> OutChannels { get; }

    /// <summary>Stride in input pixels of each returned feature map (e.g. 8, 16, 32 for ResNet's C3..C5).</summary>
    public abstract IReadOnlyList<int> Strides { get; }

    /// <summary>The forward of training, cutting the graph into <paramref name="stages"/> where the backbone has natural
    /// stage boundaries (null: no cuts; a backbone without any is one stage with the neck and head).</summary>
    public virtual IReadOnlyList<Tensor> Forward(Tensor x, BackwardStages? stages) => forward(x);
}
