namespace GflTrainer.Training;

/// <summary>Where a run is: what a checkpoint saves and a resume restores, shared by the loop's parts.</summary>
internal sealed class TrainState
{
    /// <summary>0-based epoch in progress.</summary>
    public int Epoch { get; set; }

    /// <summary>Global iterations completed.</summary>
    public long Iteration { get; set; }

    /// <summary>Batches of <see cref="Epoch"/> consumed.</summary>
    public long IterInEpoch { get; set; }

    /// <summary>Best validation bbox AP so far, NaN before the first evaluation.</summary>
    public double BestAp { get; set; } = double.NaN;

    /// <summary>The last evaluation's AP and AP50, if any.</summary>
    public double? LastAp { get; set; }
    public double? LastAp50 { get; set; }

    /// <summary>True (and <see cref="BestAp"/> updated) when <paramref name="ap"/> beats every earlier evaluation.</summary>
    public bool OfferAp(double ap)
    {
        if (!double.IsNaN(BestAp) && !(ap > BestAp)) return false;
        BestAp = ap;
        return true;
    }
}
