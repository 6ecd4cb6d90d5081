using GflTrainer.Config;
using Xunit;

namespace GflTrainer.Tests.Config;

/// <summary>The record defaults are the constants of mmdetection gfl_r50_fpn_1x_coco (gfl_spec.md).</summary>
public sealed class GflConfigDefaultsTests
{
    static readonly GflConfig Defaults = new();

    [Fact]
    public void Model_DefaultsEqualReference()
    {
        var m = Defaults.Model;
        Assert.Equal(50, m.Backbone.Depth);
        Assert.Equal(1, m.Backbone.FrozenStages);
        Assert.True(m.Backbone.NormEval);
        Assert.Null(m.Backbone.Pretrained);
        Assert.Equal(256, m.Neck.OutChannels);
        Assert.Equal(1, m.Neck.StartLevel);
        Assert.Equal(5, m.Neck.NumOuts);
        Assert.Equal(ExtraConvsSource.OnOutput, m.Neck.AddExtraConvs);
        Assert.False(m.Neck.ReluBeforeExtraConvs);
        Assert.Equal(80, m.Head.NumClasses);
        Assert.Equal(4, m.Head.StackedConvs);
        Assert.Equal(256, m.Head.FeatChannels);
        Assert.Equal(32, m.Head.NormGroups);
        Assert.Equal(16, m.Head.RegMax);
        Assert.Equal([8, 16, 32, 64, 128], m.Head.Strides);
        Assert.Equal(8.0, m.Head.OctaveBaseScale);
        Assert.Equal(0.01, m.Head.PriorProb);
        Assert.Equal(1.0, m.Head.Loss.QflWeight);
        Assert.Equal(2.0, m.Head.Loss.QflBeta);
        Assert.Equal(0.25, m.Head.Loss.DflWeight);
        Assert.Equal(2.0, m.Head.Loss.GiouWeight);
        Assert.Equal(9, m.Assigner.TopK);
        Assert.Equal(1000, m.Test.NmsPre);
        Assert.Equal(0.0, m.Test.MinBboxSize);
        Assert.Equal(0.05, m.Test.ScoreThr);
        Assert.Equal(0.6, m.Test.NmsIou);
        Assert.Equal(100, m.Test.MaxPerImg);
    }

    [Fact]
    public void Data_DefaultsEqualReference()
    {
        var d = Defaults.Data;
        Assert.Equal("data/coco/annotations/instances_train2017.json", d.Train.AnnFile);
        Assert.Equal("data/coco/train2017/", d.Train.ImgPrefix);
        Assert.Equal("data/coco/annotations/instances_val2017.json", d.Val.AnnFile);
        Assert.Equal("data/coco/val2017/", d.Test.ImgPrefix);
        Assert.Equal([1333, 800], d.ImgScale);
        Assert.Null(d.Multiscale);
        Assert.True(d.KeepRatio);
        Assert.Equal(0.5, d.FlipProb);
        Assert.Equal([123.675, 116.28, 103.53], d.Mean);
        Assert.Equal([58.395, 57.12, 57.375], d.Std);
        Assert.True(d.ToRgb);
        Assert.Equal(32, d.PadDivisor);
        Assert.Equal(16, d.BatchSize);
        Assert.Equal(1, d.ValBatchSize);
        Assert.True(d.FilterEmptyGt);
        Assert.Equal(32, d.MinSize);
        Assert.True(d.GroupByAspectRatio);
    }

    [Fact]
    public void Train_DefaultsEqualReference()
    {
        var t = Defaults.Train;
        Assert.Equal(12, t.Epochs);
        Assert.Equal(OptimizerType.Sgd, t.Optimizer.Type);
        Assert.Equal(0.01, t.Optimizer.Lr);
        Assert.Equal(0.9, t.Optimizer.Momentum);
        Assert.Equal(1e-4, t.Optimizer.WeightDecay);
        Assert.False(t.Optimizer.Nesterov);
        Assert.False(t.AutoScaleLr.Enabled);
        Assert.Equal(16, t.AutoScaleLr.BaseBatchSize);
        Assert.Equal(LrPolicy.Step, t.Schedule.Policy);
        Assert.Equal(WarmupKind.Linear, t.Schedule.Warmup);
        Assert.Equal(500, t.Schedule.WarmupIters);
        Assert.Equal(0.001, t.Schedule.WarmupRatio);
        Assert.Equal([8, 11], t.Schedule.Steps);
        Assert.Equal(0.1, t.Schedule.Gamma);
        Assert.True(t.Schedule.ByEpoch);
        Assert.Null(t.GradClip);
        Assert.Equal(AmpMode.Off, t.Amp);
        Assert.Null(t.Seed);
        Assert.Equal(50, t.LogInterval);
        Assert.Equal(1, t.Checkpoint.Interval);
        Assert.Null(t.Checkpoint.KeepLast);
        Assert.Equal(1, t.EvalInterval);
        Assert.Equal(EvalMetric.Bbox, Defaults.Evaluation.Metric);
        Assert.False(Defaults.Evaluation.Classwise);
        Assert.Equal("auto", Defaults.Runtime.Device);
        Assert.Equal(ConfigLogLevel.Info, Defaults.Runtime.LogLevel);
    }

    [Theory]
    [InlineData("NmsIou", "nms_iou")]
    [InlineData("ImgPrefix", "img_prefix")]
    [InlineData("Bf16", "bf16")]
    [InlineData("OnOutput", "on_output")]
    [InlineData("AutoScaleLr", "auto_scale_lr")]
    [InlineData("IOUThreshold", "iou_threshold")]
    public void SnakeCase_ConvertsPropertyNames(string property, string key) =>
        Assert.Equal(key, ConfigSchema.SnakeCase(property));
}
