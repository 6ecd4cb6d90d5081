using GflTrainer.Runtime;
using GflTrainer.Runtime.Native;
using static TorchSharp.torch;

namespace GflTrainer.Training;

/// <summary>
/// The trainable parameters moved into one contiguous buffer, and their gradients into another, each parameter and
/// each <c>.grad</c> a view of its slice (apex's FusedSGD / contiguous-params idea; DDP's gradient_as_bucket_view
/// for the gradients). The optimizer update, the gradient check, the loss-scaler's unscale and the all-reduce then
/// run as a few kernels over two tensors instead of a few per parameter: R50-GFL has about 170 trainable tensors, i.e.
/// some 800 small launches per step on a GPU (issue 21).
/// </summary>
/// <remarks>
/// Autograd accumulates into a gradient that is already defined in place (<c>grad += new</c> in libtorch's
/// AccumulateGrad when grad mode is off), so backward writes into the buffer's slices and they stay views; zeroing is
/// one fill of the buffer instead of dropping the tensors. Element by element the values are those of separate
/// tensors: every later operation on the buffers is element-wise, so results are bit-identical (tested against
/// torch.optim.SGD). One difference from separate tensors: a parameter that takes no part in the loss has a zero
/// gradient rather than none, so weight decay still shrinks it (torch.optim.SGD would skip it). Every trainable
/// parameter of the three heads takes part in the loss (TrainStepTests.Every_trainable_parameter_is_in_the_graph_of_the_loss).
/// The parameters must not be replaced afterwards (<c>module.to(device)</c> makes new tensors): move the model first.
/// Loading weights copies into the parameters in place and keeps the views.
/// Each parameter keeps its memory format: a channels_last conv weight (<see cref="ChannelsLast.Apply"/>, called before
/// this) gets an NHWC slice and a channels_last view, and so does its gradient, as the NHWC convolutions read and write
/// them (no conversion per call). The flat operations are element-wise, so the layout changes none of their results.
/// </remarks>
internal sealed class FlatParameters : IDisposable
{
    private readonly long[] _offsets;
    private readonly bool[] _channelsLast;

    /// <param name="parameters">leaf tensors of one dtype and device (the model's trainable parameters), each contiguous
    /// or channels_last.</param>
    public FlatParameters(IReadOnlyList<Tensor> parameters)
    {
        Parameters = parameters;
        _channelsLast = parameters.Select(ChannelsLast.Is).ToArray();
        _offsets = new long[parameters.Count + 1];
        for (int i = 0; i < parameters.Count; i++) _offsets[i + 1] = AlignUp(_offsets[i] + parameters[i].numel(), parameters[i].element_size());
        if (parameters.Count == 0)
        {
            Values = zeros(0);
            Gradients = zeros(0);
            return;
        }
        var dtype = parameters[0].dtype;
        var device = parameters[0].device;
        foreach (var p in parameters)
            if (p.dtype != dtype || p.device.ToString() != device.ToString())
                throw new ArgumentException($"parameters of one dtype and device expected: {dtype} on {device} and {p.dtype} on {p.device}");
        using var noGrad = no_grad();
        // zeros, not empty: the alignment gaps take part in every flat operation and must not hold the allocator's garbage.
        Values = zeros(_offsets[^1], dtype: dtype, device: device);
        Gradients = zeros(_offsets[^1], dtype: dtype, device: device);
        for (int i = 0; i < parameters.Count; i++)
        {
            var p = parameters[i];
            using var slice = Slice(Values, i);
            slice.copy_(p.detach());
            p.set_(slice);   // the parameter now lives in the buffer (same tensor object, new storage)
            p.grad = Slice(Gradients, i);
        }
    }

    /// <summary>The parameters, in the given order; each a view of <see cref="Values"/>.</summary>
    public IReadOnlyList<Tensor> Parameters { get; }

    /// <summary>All parameter values, concatenated flat in order.</summary>
    public Tensor Values { get; }

    /// <summary>All gradients, concatenated flat in order; each parameter's <c>.grad</c> is a view of it.</summary>
    public Tensor Gradients { get; }

    /// <summary>Parameter <paramref name="index"/>'s slice of a buffer laid out as <see cref="Values"/>, in its shape
    /// and memory format.</summary>
    public Tensor Slice(Tensor buffer, int index)
    {
        var shape = Parameters[index].shape;
        using var flat = buffer.narrow(0, _offsets[index], Parameters[index].numel());
        return _channelsLast[index] ? ChannelsLast.View(flat, shape) : flat.view(shape);
    }

    /// <summary>The part of <see cref="Gradients"/> from parameter <paramref name="start"/> up to <paramref name="end"/>
    /// (exclusive), alignment gaps included (zero, like every gap).</summary>
    public Tensor GradientSpan(int start, int end)
    {
        if (start < 0 || end > Parameters.Count || start >= end) throw new ArgumentOutOfRangeException(nameof(start), $"parameters [{start}, {end}) of {Parameters.Count}");
        return Gradients.narrow(0, _offsets[start], _offsets[end] - _offsets[start]);
    }

    /// <summary>Clears the gradients for the next backward. A parameter whose <c>.grad</c> was replaced or dropped
    /// meanwhile gets its view back.</summary>
    public void ZeroGradients()
    {
        using var noGrad = no_grad();
        Gradients.zero_();
        for (int i = 0; i < Parameters.Count; i++)
        {
            using var g = Parameters[i].grad;   // a new handle each read: released here
            if (g is null || !IsSlice(g, i)) Parameters[i].grad = Slice(Gradients, i);
        }
    }

    private bool IsSlice(Tensor g, int i)
    {
        bool layout = _channelsLast[i] ? ChannelsLast.Is(g) : g.is_contiguous();
        return layout && TensorData.FirstElement(g) == TensorData.Pointer(Gradients) + (nint)(_offsets[i] * Gradients.element_size());
    }

    // Each slice starts on a 64-byte boundary, as libtorch's allocator places every tensor, so kernels that read a
    // parameter (vectorised loops with an unaligned head, oneDNN's weight reorders) take the paths they took on separate
    // tensors. The gaps stay zero in every buffer and are never read as a parameter.
    private static long AlignUp(long elements, long elementSize)
    {
        long per = Math.Max(1, 64 / elementSize);
        return (elements + per - 1) / per * per;
    }

    public void Dispose()
    {
        // The parameters keep the storage alive; these are only this object's handles.
        Values.Dispose();
        Gradients.Dispose();
    }
}
