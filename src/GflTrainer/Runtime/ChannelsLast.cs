using TorchSharp;
using static TorchSharp.torch;

namespace GflTrainer.Runtime;

/// <summary>
/// PyTorch's channels_last memory format for 4-D tensors: NHWC in memory under the NCHW shape, strides
/// (HWC, 1, WC, C). Convolutions (oneDNN on the CPU, cuDNN on the GPU) then run their NHWC kernels and keep the format
/// in their outputs, and element-wise ops, BatchNorm, GroupNorm, ReLU and nearest upsampling preserve it, so one
/// conversion of the input and of the conv weights turns the whole network (PyTorch's
/// <c>model.to(memory_format=torch.channels_last)</c>). TorchSharp 0.107 has no memory_format argument: an NHWC copy
/// viewed with those strides gives the same tensor.
/// </summary>
public static class ChannelsLast
{
    /// <summary>A channels_last copy of a 4-D tensor (same shape and values).</summary>
    public static Tensor Of(Tensor t)
    {
        if (t.dim() != 4) throw new ArgumentException($"channels_last needs a 4-D tensor, got {t.dim()}-D", nameof(t));
        // as_strided rather than permuting back: for a size-1 H and W (1x1 kernels) permute-contiguous keeps the NCHW
        // strides (the memory order is the same), which libtorch's suggest_memory_format reads as NCHW; PyTorch's
        // .contiguous(memory_format) keeps them too, its empty(memory_format=channels_last) gives these strides. With
        // them the weight alone makes a convolution choose NHWC (inference feeds NCHW batches) and Is() is exact.
        using var nhwc = t.permute(0, 2, 3, 1).contiguous();
        return nhwc.as_strided(t.shape, Strides(t.shape));
    }

    /// <summary>PyTorch's channels_last strides of an (N, C, H, W) shape: (HWC, 1, WC, C).</summary>
    public static long[] Strides(long[] s) => [s[1] * s[2] * s[3], 1, s[3] * s[1], s[1]];

    /// <summary>Every 4-D parameter of <paramref name="model"/> (conv weights, trainable or frozen) becomes channels_last in
    /// place: the same Parameter objects with new storage, as PyTorch's <c>model.to(memory_format=torch.channels_last)</c>.
    /// Call it after moving the model to its device and before the optimizer takes the parameters (<c>Sgd</c> keeps each
    /// parameter's format in its flat buffer).</summary>
    public static void Apply(nn.Module model)
    {
        using var noGrad = no_grad();
        foreach (var p in model.parameters())
            if (p.dim() == 4 && !Is(p))
            {
                using var copy = Of(p.detach());
                p.set_(copy);
            }
    }

    /// <summary>A channels_last view of a flat buffer holding an (N, C, H, W) tensor's values in NHWC order.</summary>
    public static Tensor View(Tensor flat, long[] shape) =>
        flat.view(shape[0], shape[2], shape[3], shape[1]).permute(0, 3, 1, 2);

    /// <summary>Whether a tensor has exactly the dense channels_last strides of <see cref="Strides"/> (libtorch's
    /// is_contiguous(channels_last) also accepts any stride on a size-1 dimension; here it must be the one
    /// <see cref="Of"/> and <see cref="View"/> give).</summary>
    public static bool Is(Tensor t) => t.dim() == 4 && t.stride().SequenceEqual(Strides(t.shape));
}
