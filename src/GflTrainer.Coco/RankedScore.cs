namespace GflTrainer.Coco;

/// <summary>Sort key for "score descending, stable": pycocotools sorts with numpy's mergesort on -score, so equal
/// scores keep their input order. Ordering by (score desc, input position) with any sort gives the same result;
/// as a struct implementing IComparable, Array.Sort compares without delegate calls.</summary>
internal readonly record struct RankedScore(double Score, int Position) : IComparable<RankedScore>
{
    public int CompareTo(RankedScore other)
    {
        int byScore = other.Score.CompareTo(Score);
        return byScore != 0 ? byScore : Position.CompareTo(other.Position);
    }
}
