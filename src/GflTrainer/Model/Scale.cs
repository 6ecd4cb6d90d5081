using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GflTrainer.Model;

/// <summary>mmcv <c>Scale</c>: one learnable scalar (0-dim, key <c>scale</c>) multiplying its input. In GFL it scales
/// the raw bin logits of a level before the softmax, i.e. it acts as a per-level temperature.</summary>
internal sealed class Scale : Module<Tensor, Tensor>
{
    private readonly Parameter scale;

    /// <summary>The learnable scalar.</summary>
    public Parameter Value => scale;

    public Scale(float initial = 1.0f) : base(nameof(Scale))
    {
        scale = new Parameter(tensor(initial, ScalarType.Float32));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => x * scale;
}
