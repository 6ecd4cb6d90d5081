using static TorchSharp.torch;

namespace GflTrainer.Data.Transforms;

/// <summary>(img − mean) / std per RGB channel on float32, as mmdetection 3.x's DetDataPreprocessor (2.x multiplies
/// by 1/std, which can differ in the last bit). Defaults: the ImageNet statistics of the R-50 caffe-free weights.</summary>
internal sealed class Normalize
{
    public static readonly float[] ImageNetMean = [123.675f, 116.28f, 103.53f];
    public static readonly float[] ImageNetStd = [58.395f, 57.12f, 57.375f];

    public Normalize(float[]? mean = null, float[]? std = null)
    {
        Mean = mean ?? ImageNetMean;
        Std = std ?? ImageNetStd;
        if (Mean.Length != 3 || Std.Length != 3) throw new GflConfigException("normalize mean/std need 3 values (RGB)");
    }

    public float[] Mean { get; }
    public float[] Std { get; }

    /// <param name="image">(3, H, W) uint8 RGB.</param>
    /// <returns>(3, H, W) float32 on the same device.</returns>
    public Tensor Apply(Tensor image)
    {
        using var mean = tensor(Mean, device: image.device).view(3, 1, 1);
        using var std = tensor(Std, device: image.device).view(3, 1, 1);
        using var f = image.to_type(ScalarType.Float32);
        var centred = f.sub(mean);
        return centred.div_(std);   // in place: returns centred itself
    }
}
