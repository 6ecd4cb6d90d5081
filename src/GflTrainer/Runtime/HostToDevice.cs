using TorchSharp;
using static TorchSharp.torch;

namespace GflTrainer.Runtime;

/// <summary>
/// Copies host tensors to the training device without making the host wait for the device. libtorch's copy from
/// ordinary (pageable) host memory to a GPU with non_blocking false synchronises the stream after the copy
/// (ATen's copy_kernel_cuda), so each such upload in the loop waits for every kernel queued before it: the batch's
/// images, its ground truth and its targets made ~14 of those per step, and the host could never run ahead of the
/// device (issue 21). From page-locked memory a non-blocking copy is queued like a kernel, as PyTorch's
/// <c>DataLoader(pin_memory=True)</c> + <c>.cuda(non_blocking=True)</c> does; the page-locked block comes from
/// libtorch's caching host allocator, which keeps it until the copy has run even when the tensor is released at once.
/// On the CPU nothing is copied.
/// </summary>
internal static class HostToDevice
{
    /// <summary><paramref name="host"/> (a CPU tensor) on <paramref name="device"/>: the tensor itself on the CPU, else a
    /// queued copy through page-locked memory, in the caller's dispose scope.</summary>
    public static Tensor Upload(Tensor host, Device device)
    {
        if (device.type == DeviceType.CPU) return host;
        using var pinned = host.is_pinned() ? null : host.pin_memory();
        return (pinned ?? host).to(device, non_blocking: true);
    }
}
