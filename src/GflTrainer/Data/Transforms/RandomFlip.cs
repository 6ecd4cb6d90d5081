namespace GflTrainer.Data.Transforms;

/// <summary>Horizontal flip (mmdetection <c>RandomFlip(flip_ratio=0.5)</c>, decided per sample by its own RNG).
/// The image is mirrored inside the resize (<see cref="Resize.Image"/>, whose horizontal tables run
/// backwards). Boxes follow mmdetection's <c>bbox_flip</c>: x1' = W − x2, x2' = W − x1 (no −1).</summary>
internal static class RandomFlip
{
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
