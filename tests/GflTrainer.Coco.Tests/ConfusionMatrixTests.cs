using Xunit;

namespace GflTrainer.Coco.Tests;

public sealed class ConfusionMatrixTests
{
    static readonly CocoCategory[] Cats = [new(1, "cat"), new(3, "dog")];
    static CocoGroundTruthBox Gt(long id, long image, long cat, double x, double y, double w = 20, double h = 20, bool crowd = false) =>
        new(id, image, cat, x, y, w, h, w * h, crowd);

    [Fact]
    public void EveryGroundTruthAndEveryKeptDetection_IsCountedOnce_InItsCell()
    {
        var gt = new CocoGroundTruth([1, 2], Cats,
        [
            Gt(1, 1, 1, 0, 0), Gt(2, 1, 3, 100, 0), Gt(3, 1, 3, 200, 0),   // image 1: cat, dog, dog
            Gt(4, 2, 1, 0, 0),                                              // image 2: cat
        ]);
        var dets = new List<CocoDetection>
        {
            new(1, 1, 0, 0, 20, 20, 0.9),      // cat on the cat: true positive
            new(1, 1, 100, 0, 20, 20, 0.8),    // cat on a dog: confusion dog -> cat
            new(1, 3, 300, 0, 20, 20, 0.7),    // dog on nothing: false positive
            new(1, 3, 200, 0, 20, 20, 0.1),    // dog on the dog, but below the score threshold: the dog is missed
            new(2, 3, 1, 1, 20, 20, 0.95),     // dog on image 2's cat (IoU 0.82): confusion cat -> dog
            new(2, 1, 0, 0, 20, 20, 0.5),      // cat on the same cat, already taken: false positive
        };
        var m = ConfusionMatrix.Compute(gt, dets, scoreThreshold: 0.3, iouThreshold: 0.5);
        Assert.Equal(3, m.Size);
        // rows true (cat, dog, background), columns predicted (cat, dog, background)
        long[,] expected = { { 1, 1, 0 }, { 1, 0, 1 }, { 1, 1, 0 } };
        Assert.Equal(expected, m.Counts);
        var n = m.RowNormalised();
        Assert.Equal(0.5, n[0, 0]);
        Assert.Equal(0.5, n[1, 2]);
        Assert.Equal(0, n[2, 2]);
        // Row sums are the ground-truth counts per class; the column sums of cat/dog the kept detections per class.
        Assert.Equal(2, m.Counts[0, 0] + m.Counts[0, 1] + m.Counts[0, 2]);
        Assert.Equal(5, Enumerable.Range(0, 3).Sum(r => m.Counts[r, 0] + m.Counts[r, 1]));
    }

    [Fact]
    public void ADetectionPrefersItsOwnClass_OverAHigherIouOfAnotherClass()
    {
        // Two overlapping gts; the cat detection overlaps the dog more (IoU 1) and the cat less (IoU ~0.68).
        var gt = new CocoGroundTruth([1], Cats, [Gt(1, 1, 1, 4, 0), Gt(2, 1, 3, 0, 0)]);
        var m = ConfusionMatrix.Compute(gt, [new CocoDetection(1, 1, 0, 0, 20, 20, 0.9)]);
        Assert.Equal(1, m.Counts[0, 0]);   // the cat found as cat
        Assert.Equal(1, m.Counts[1, 2]);   // the dog missed
        Assert.Equal(0, m.Counts[2, 0]);
    }

    [Fact]
    public void ADetectionInsideACrowdRegion_IsIgnored_NotAFalsePositive()
    {
        var gt = new CocoGroundTruth([1], Cats, [Gt(1, 1, 1, 0, 0, 200, 200, crowd: true)]);
        var m = ConfusionMatrix.Compute(gt, [new CocoDetection(1, 1, 50, 50, 20, 20, 0.9), new CocoDetection(1, 3, 190, 190, 20, 20, 0.9)]);
        Assert.Equal(1, m.IgnoredOnCrowd);    // fully inside the crowd
        Assert.Equal(1, m.Counts[2, 1]);      // a quarter inside: false positive
        Assert.Equal(0, m.Counts[2, 0]);
    }

    [Fact]
    public void EqualIouCandidates_GoToTheFirstGroundTruth_AndTheOrderOfEqualScoresIsTheListOrder()
    {
        var gt = new CocoGroundTruth([1], Cats, [Gt(1, 1, 1, 0, 0), Gt(2, 1, 1, 0, 0)]);   // two identical cats
        var m = ConfusionMatrix.Compute(gt, [new CocoDetection(1, 3, 0, 0, 20, 20, 0.9), new CocoDetection(1, 1, 0, 0, 20, 20, 0.9)]);
        // The dog detection comes first (equal scores keep list order) and takes a cat as a confusion; the cat
        // detection takes the other cat.
        Assert.Equal(1, m.Counts[0, 1]);
        Assert.Equal(1, m.Counts[0, 0]);
    }
}
