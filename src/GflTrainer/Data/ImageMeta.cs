namespace GflTrainer.Data;

/// <summary>What is needed to map predictions on a transformed image back to the original file.
/// Shapes are (H, W) in pixels; ScaleW/ScaleH are resized/original (mmdetection's scale_factor [w, h]).</summary>
public sealed record ImageMeta(
    long ImageId,
    string FileName,
    int OriginalHeight, int OriginalWidth,
    int ImageHeight, int ImageWidth,   // after resize, before padding (img_shape)
    int PadHeight, int PadWidth,       // this image's own padded shape (pad_shape), <= the batch's
    float ScaleW, float ScaleH,
    bool Flipped);
