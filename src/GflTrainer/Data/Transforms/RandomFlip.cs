using static TorchSharp.torch;

namespace GflTrainer.Data.Transforms;

/// <summary>Horizontal flip (mmdetection <c>RandomFlip(flip_ratio=0.5)</c>, decided per sample by its own RNG).
/// Boxes follow mmdetection's <c>bbox_flip</c>: x1' = W − x2, x2' = W − x1 (no −1).</summary>
internal static class RandomFlip
{
    /// <param name="image">(…, W) tensor; the last dimension is flipped.</param>
    public static Tensor Image(Tensor image) => image.flip(-1);

    public static void Boxes(float[] boxes, int width)
    {
        for (int i = 0; i < boxes.Length; i += 4)
        {
            float x1 = boxes[i], x2 = boxes[i + 2];
            boxes[i] = width - x2;
            boxes[i + 2] = width - x1;
        }
    }
}
