namespace GflTrainer.Checkpoints;

/// <summary>What defines a training run besides its configuration (which the checkpoint stores whole): the training
/// annotations (SHA-256 of the file, usable images), the process layout and the software that computed it. A resume
/// compares it, with the configuration and the class list, against the run being started.</summary>
/// <param name="TrainAnnSha256">SHA-256 of <c>data.train.ann_file</c>'s bytes (the path itself may move).</param>
/// <param name="TrainImages">training images after filtering (what one epoch iterates over).</param>
/// <param name="WorldSize">processes in the run (1 until distributed training).</param>
/// <param name="GflVersion">gfl's version, without the commit suffix.</param>
/// <param name="LibtorchVersion">libtorch's version (kernels, and so numerics, differ between releases).</param>
public sealed record RunFingerprint(string TrainAnnSha256, int TrainImages, int WorldSize, string GflVersion, string LibtorchVersion);
