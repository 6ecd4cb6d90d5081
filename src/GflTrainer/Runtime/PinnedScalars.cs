using TorchSharp;

namespace GflTrainer.Runtime;

/// <summary>
/// Process-lifetime Scalars for code that runs on loader threads. TorchSharp 0.107 turns numbers into Scalar objects
/// implicitly (also the hidden alpha = 1 of every tensor add/sub) and releases them by finalizer, without keeping them
/// alive across the native call (dotnet/TorchSharp PRs #1434/#1496, open). A garbage collection started by another
/// thread can then free a Scalar while libtorch is reading it; we saw it as "argument alpha must not be a floating
/// point number" in a worker's integer add_. Statics are never finalized, so calls that only use these are safe.
/// </summary>
internal static class PinnedScalars
{
    public static readonly Scalar Zero = 0.ToScalar();
    public static readonly Scalar One = 1.ToScalar();
    public static readonly Scalar Two = 2.ToScalar();
    public static readonly Scalar Max8Bit = 255.ToScalar();
}
