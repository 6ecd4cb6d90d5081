using GflTrainer.Training.Losses;
using GflTrainer.Training.Targets;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Training.Losses;

/// <summary>The level-major row set the dense-head losses compute on: the same rows, in the same order, as the
/// reference's per-level loop, and per-level sums equal to that loop's.</summary>
public sealed class LevelRowsTests
{
    // Two images, levels of 2x3 and 1x2 locations with 2 anchors each: A_l = 12 and 4.
    static (LevelRows Rows, GflTargets Targets, Tensor[] Outputs) Case()
    {
        manual_seed(7);
        long[] perLevel = [12, 4];
        const int batch = 2, classes = 3;
        var labels = randint(0, classes + 1, [batch, 16]);   // classes = background
        var targets = new GflTargets(rand(16, 4), perLevel, ones(batch, 16, dtype: ScalarType.Bool), labels, rand(batch, 16),
            rand(batch, 16, 4), [0, 0]);
        Tensor[] outputs = [randn(batch, 2 * classes, 2, 3), randn(batch, 2 * classes, 1, 2)];
        return (new LevelRows(targets, batch), targets, outputs);
    }

    [Fact]
    public void Rows_are_the_per_level_inputs_of_the_reference_concatenated()
    {
        using var scope = NewDisposeScope();
        var (rows, targets, outputs) = Case();
        Assert.Equal([24L, 8L], rows.RowsPerLevel);
        var logits = LevelRows.OfOutputs(outputs, 3);
        long offset = 0;
        for (int l = 0; l < 2; l++)
        {
            var count = targets.AnchorsPerLevel[l];
            // The reference's loss_by_feat_single inputs for level l.
            Assert.True(rows.OfLevel(logits, l).equal(outputs[l].permute(0, 2, 3, 1).reshape(-1, 3)).all().item<bool>());
            Assert.True(rows.OfLevel(rows.Labels, l).equal(targets.Labels.narrow(1, offset, count).reshape(-1)).all().item<bool>());
            Assert.True(rows.OfLevel(rows.BoxTargets, l).equal(targets.BoxTargets.narrow(1, offset, count).reshape(-1, 4)).all().item<bool>());
            Assert.True(rows.OfLevel(rows.Anchors, l).equal(targets.Anchors.narrow(0, offset, count).repeat(2, 1)).all().item<bool>());
            Assert.True((rows.OfLevel(rows.RowLevel, l) == l).all().item<bool>());
            offset += count;
        }
        Assert.True(rows.ToImageMajor(rows.LabelWeights).equal(targets.LabelWeights).all().item<bool>());
    }

    [Fact]
    public void Per_level_sums_over_positives_equal_the_loop()
    {
        using var scope = NewDisposeScope();
        var (rows, _, _) = Case();
        var values = randn(32);
        var positives = rows.Positives(3);
        var onPositives = LevelRows.SumOverPositives(rows.LevelMask(positives, float32), values.index_select(0, positives));
        for (int l = 0; l < 2; l++)
        {
            var levelLabels = rows.OfLevel(rows.Labels, l);
            var expected = rows.OfLevel(values, l).masked_select(levelLabels < 3).sum().item<float>();
            Assert.Equal(expected, onPositives[l].item<float>(), 5);
        }
        Assert.Equal((rows.Labels < 3).sum().item<long>(), positives.shape[0]);
        // The levels' row ranges partition the rows in order.
        Assert.True(cat([rows.OfLevel(values, 0), rows.OfLevel(values, 1)], 0).equal(values).all().item<bool>());
    }
}
