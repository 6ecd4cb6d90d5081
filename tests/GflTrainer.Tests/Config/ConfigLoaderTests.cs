using GflTrainer.Config;
using Xunit;

namespace GflTrainer.Tests.Config;

public sealed class ConfigLoaderTests
{
    static string RepoConfig(string name) => Path.Combine(TestPaths.RepoRoot(), "configs", name);

    static ConfigValidationException LoadFails(string path, params string[] overrides) =>
        Assert.Throws<ConfigValidationException>(() => ConfigLoader.Load(path, overrides));

    [Fact]
    public void R50_1x_ResolvesToTheReference()
    {
        var c = ConfigLoader.Load(RepoConfig("r50_1x.yaml"));

        Assert.Equal(50, c.Model.Backbone.Depth);
        Assert.Equal(1, c.Model.Backbone.FrozenStages);
        Assert.Equal(ExtraConvsSource.OnOutput, c.Model.Neck.AddExtraConvs);
        Assert.Equal(80, c.Model.Head.NumClasses);
        Assert.Equal([8, 16, 32, 64, 128], c.Model.Head.Strides);
        Assert.Equal(0.25, c.Model.Head.Loss.DflWeight);
        Assert.Equal(9, c.Model.Assigner.TopK);
        Assert.Equal(0.6, c.Model.Test.NmsIou);
        Assert.Equal("data/coco/annotations/instances_train2017.json", c.Data.Train.AnnFile);
        Assert.Equal("data/coco/val2017/", c.Data.Val.ImgPrefix);
        Assert.Equal([1333, 800], c.Data.ImgScale);
        Assert.Equal(0.01, c.Train.Optimizer.Lr); // the GFL file overrides the base schedule's 0.02
        Assert.Equal(1e-4, c.Train.Optimizer.WeightDecay);
        Assert.Equal([8, 11], c.Train.Schedule.Steps);
        Assert.Equal(500, c.Train.Schedule.WarmupIters);
        Assert.Equal(50, c.Train.LogInterval);
        Assert.Equal("runs/r50_1x", c.Runtime.WorkDir);
        Assert.NotNull(c.Model.Backbone.Pretrained);

        // Everything else equals the record defaults, which are the reference (see GflConfigDefaultsTests).
        var expected = new GflConfig() with
        {
            Model = new ModelConfig { Backbone = new BackboneConfig { Pretrained = c.Model.Backbone.Pretrained } },
            Runtime = new RuntimeConfig { WorkDir = "runs/r50_1x" },
        };
        Assert.Equal(ConfigWriter.ToYaml(expected), ConfigWriter.ToYaml(c));
    }

    /// <summary>mmdetection's atss_r50_fpn_1x_coco: the GFL file with the ATSS head and its losses (Focal Loss γ 2,
    /// α 0.25; GIoU 2; centerness 1), nothing else changed.</summary>
    [Fact]
    public void Atss_R50_1x_IsTheGflReferenceWithTheAtssHead()
    {
        var c = ConfigLoader.Load(RepoConfig("atss_r50_1x.yaml"));
        var gfl = ConfigLoader.Load(RepoConfig("r50_1x.yaml"));
        Assert.Equal(HeadType.Atss, c.Model.Head.Type);
        var expected = gfl with
        {
            Model = gfl.Model with { Head = gfl.Model.Head with { Type = HeadType.Atss } },
            Runtime = gfl.Runtime with { WorkDir = "runs/atss_r50_1x" },
        };
        Assert.Equal(ConfigWriter.ToYaml(expected), ConfigWriter.ToYaml(c));
        Assert.Equal((2.0, 0.25, 1.0, 2.0, 1.0), (c.Model.Head.Loss.FocalGamma, c.Model.Head.Loss.FocalAlpha,
            c.Model.Head.Loss.FocalWeight, c.Model.Head.Loss.GiouWeight, c.Model.Head.Loss.CenternessWeight));
    }

    /// <summary>mmdetection's retinanet_r50_fpn_1x_coco: the same backbone and schedule, FPN P6 from C5, RetinaHead with
    /// 9 anchors (octave 4 x 3 scales x ratios 0.5, 1, 2), MaxIoU 0.5 / 0.4 / 0, Focal Loss + L1, test NMS 0.5.</summary>
    [Fact]
    public void Retinanet_R50_1x_IsTheGflReferenceWithRetinaNetsFpnHeadAssignerAndNms()
    {
        var c = ConfigLoader.Load(RepoConfig("retinanet_r50_1x.yaml"));
        var gfl = ConfigLoader.Load(RepoConfig("r50_1x.yaml"));
        var expected = gfl with
        {
            Model = gfl.Model with
            {
                Neck = gfl.Model.Neck with { AddExtraConvs = ExtraConvsSource.OnInput },
                Head = gfl.Model.Head with { Type = HeadType.Retinanet, OctaveBaseScale = 4, ScalesPerOctave = 3, Ratios = [0.5, 1.0, 2.0] },
                Test = gfl.Model.Test with { NmsIou = 0.5 },
            },
            Runtime = gfl.Runtime with { WorkDir = "runs/retinanet_r50_1x" },
        };
        Assert.Equal(ConfigWriter.ToYaml(expected), ConfigWriter.ToYaml(c));
        Assert.Equal((BoxLossType.L1, 1.0, 0.5, 0.4, 0.0), (c.Model.Head.Loss.Box, c.Model.Head.Loss.L1Weight, c.Model.Assigner.PosIouThr,
            c.Model.Assigner.NegIouThr, c.Model.Assigner.MinPosIou));
    }

    /// <summary>Several anchors per location are RetinaNet's: the ATSS assigner of the gfl and atss heads takes one per
    /// location, so those heads refuse them at load; and a MaxIoU negative threshold above the positive one.</summary>
    [Fact]
    public void AnchorsAndAssignerThresholds_AreCheckedAgainstTheHead()
    {
        var problems = LoadFails(RepoConfig("r50_1x.yaml"), "model.head.ratios=[0.5,1.0,2.0]", "model.assigner.neg_iou_thr=0.6").Problems
            .ToDictionary(p => p.Key);
        Assert.Contains("one square anchor per location", problems["model.head.ratios"].Message);
        Assert.Contains("above model.assigner.pos_iou_thr", problems["model.assigner.neg_iou_thr"].Message);
        Assert.Contains("one square anchor", Assert.Single(LoadFails(RepoConfig("atss_r50_1x.yaml"), "model.head.scales_per_octave=3").Problems).Message);
        Assert.Equal(9, ConfigLoader.Load(RepoConfig("retinanet_r50_1x.yaml")).Model.Head.Ratios.Count * 3);
    }

    [Theory]
    [InlineData("quickstart.yaml", 3, 18)]
    [InlineData("bccd.yaml", 3, 18)]
    public void SmallConfigs_LoadAndTrainFromScratch(string file, int classes, int depth)
    {
        var c = ConfigLoader.Load(RepoConfig(file));
        Assert.Equal(classes, c.Model.Head.NumClasses);
        Assert.Equal(depth, c.Model.Backbone.Depth);
        Assert.Null(c.Model.Backbone.Pretrained);
        Assert.Equal(-1, c.Model.Backbone.FrozenStages);
        Assert.False(c.Model.Backbone.NormEval);
    }

    [Fact]
    public void Bases_DeepMergeInOrder_ChildWins_ListsReplaced()
    {
        using var dir = new TempConfigDir();
        dir.Write("_base_/a.yaml", """
            model:
              head:
                num_classes: 20
                strides: [8, 16, 32, 64, 128]
            train:
              epochs: 30
              optimizer: { lr: 0.5, momentum: 0.8 }
            """);
        dir.Write("_base_/b.yaml", """
            train:
              optimizer:
                lr: 0.2
            """);
        var child = dir.Write("exp/child.yaml", """
            _base_: [../_base_/a.yaml, ../_base_/b.yaml]
            model:
              neck: { num_outs: 3 }
              head:
                strides: [8, 16, 32]
            train:
              schedule: { steps: [20] }
            """);

        var c = ConfigLoader.Load(child);

        Assert.Equal(20, c.Model.Head.NumClasses);        // from a, untouched by the child's head section
        Assert.Equal([8, 16, 32], c.Model.Head.Strides);  // list replaced, not merged
        Assert.Equal(3, c.Model.Neck.NumOuts);
        Assert.Equal(30, c.Train.Epochs);
        Assert.Equal(0.2, c.Train.Optimizer.Lr);          // b after a
        Assert.Equal(0.8, c.Train.Optimizer.Momentum);    // a's sibling key survives b's merge
        Assert.Equal([20], c.Train.Schedule.Steps);
        Assert.Equal(256, c.Model.Head.FeatChannels);     // record default where no file says anything
        Assert.Equal("runs/child", c.Runtime.WorkDir);
    }

    [Fact]
    public void Bases_DeleteFlag_ReplacesTheSectionInsteadOfMerging()
    {
        using var dir = new TempConfigDir();
        dir.Write("base.yaml", "train:\n  optimizer:\n    lr: 0.5\n    momentum: 0.5\n");
        var child = dir.Write("child.yaml", "_base_: base.yaml\ntrain:\n  optimizer:\n    _delete_: true\n    lr: 0.3\n");

        var c = ConfigLoader.Load(child);

        Assert.Equal(0.3, c.Train.Optimizer.Lr);
        Assert.Equal(0.9, c.Train.Optimizer.Momentum); // base's 0.5 dropped: back to the record default
    }

    [Fact]
    public void Overrides_AreParsedToTheTargetType()
    {
        var c = ConfigLoader.Load(RepoConfig("r50_1x.yaml"),
        [
            "train.epochs=24",
            "train.optimizer.lr=0.02",
            "data.group_by_aspect_ratio=false",
            "model.head.strides=[8, 16, 32]",
            "model.neck.num_outs=3",
            "train.schedule.steps=16,22",
            "train.schedule.policy=cosine",
            "train.amp=bf16",
            "model.backbone.pretrained=null",
            "train.grad_clip.max_norm=10",
            "train.seed=7",
            "runtime.work_dir=runs/x",
            "data.multiscale.scales=[[1333,480],[1333,800]]",
        ]);

        Assert.Equal(24, c.Train.Epochs);
        Assert.Equal(0.02, c.Train.Optimizer.Lr);
        Assert.False(c.Data.GroupByAspectRatio);
        Assert.Equal([8, 16, 32], c.Model.Head.Strides);
        Assert.Equal([16, 22], c.Train.Schedule.Steps);
        Assert.Equal(LrPolicy.Cosine, c.Train.Schedule.Policy);
        Assert.Equal(AmpMode.Bf16, c.Train.Amp);
        Assert.Null(c.Model.Backbone.Pretrained);
        Assert.Equal(10.0, c.Train.GradClip!.MaxNorm);    // a null section becomes a section with defaults
        Assert.Equal(2.0, c.Train.GradClip.NormType);
        Assert.Equal(7, c.Train.Seed);
        Assert.Equal("runs/x", c.Runtime.WorkDir);
        Assert.Equal(MultiscaleMode.Range, c.Data.Multiscale!.Mode);
        Assert.Equal([1333, 480], c.Data.Multiscale.Scales[0]);
    }

    [Fact]
    public void UnknownKey_NamesFileLineAndNearestKey()
    {
        using var dir = new TempConfigDir();
        var file = dir.Write("typo.yaml", "model:\n  head:\n    num_clases: 3\n");

        var e = LoadFails(file);

        var p = Assert.Single(e.Problems);
        Assert.EndsWith("typo.yaml", p.File);
        Assert.Equal(3, p.Line);
        Assert.Equal("model.head.num_clases", p.Key);
        Assert.Contains("did you mean 'model.head.num_classes'?", p.Message);
        Assert.Contains("typo.yaml:3: model.head.num_clases", e.Message);
    }

    [Fact]
    public void UnknownKey_InTheWrongSection_SuggestsWhereItLives()
    {
        using var dir = new TempConfigDir();
        var file = dir.Write("x.yaml", "train:\n  lr: 0.1\n");

        var p = Assert.Single(LoadFails(file).Problems);

        Assert.Contains("did you mean 'train.optimizer.lr'?", p.Message);
    }

    [Fact]
    public void UnknownKey_InOverride_IsReportedAsSet()
    {
        var p = Assert.Single(LoadFails(RepoConfig("r50_1x.yaml"), "train.optimzer.lr=0.1").Problems);

        Assert.Equal("--set", p.File);
        Assert.Contains("did you mean 'train.optimizer'?", p.Message);
    }

    [Fact]
    public void WrongTypesAndRanges_AllReportedWithFileLineAndAllowedRange()
    {
        using var dir = new TempConfigDir();
        var file = dir.Write("bad.yaml", """
            model:
              head:
                reg_max: 0
                num_classes: many
            data:
              flip_prob: 1.5
              img_scale: [1333]
            train:
              amp: fp8
              optimizer:
                momentum: "0.9"
              schedule:
                by_epoch: yes
            """);

        var e = LoadFails(file);

        var byKey = e.Problems.ToDictionary(p => p.Key);
        Assert.Equal(7, e.Problems.Count);
        Assert.Equal(3, byKey["model.head.reg_max"].Line);
        Assert.Contains("allowed [1, 256]", byKey["model.head.reg_max"].Message);
        Assert.Equal(4, byKey["model.head.num_classes"].Line);
        Assert.Contains("is not an integer in [1, 100000]", byKey["model.head.num_classes"].Message);
        Assert.Contains("allowed [0, 1]", byKey["data.flip_prob"].Message);
        Assert.Contains("expected exactly 2", byKey["data.img_scale"].Message);
        Assert.Contains("one of off, bf16, fp16", byKey["train.amp"].Message);
        Assert.Contains("not a number", byKey["train.optimizer.momentum"].Message); // quoted = string
        Assert.Contains("true or false", byKey["train.schedule.by_epoch"].Message);
        Assert.All(e.Problems, p => Assert.EndsWith("bad.yaml", p.File));
        Assert.Equal(e.Problems.Count + 1, e.Message.Split('\n').Length); // header + one line per problem
    }

    [Fact]
    public void ProblemInBaseFile_NamesTheBaseFile()
    {
        using var dir = new TempConfigDir();
        dir.Write("_base_/model.yaml", "model:\n  backbone:\n    depth: 50\n    frozen_stages: 9\n");
        var child = dir.Write("child.yaml", "_base_: [_base_/model.yaml]\ntrain:\n  epochs: 2\n");

        var p = Assert.Single(LoadFails(child).Problems);

        Assert.EndsWith(Path.Combine("_base_", "model.yaml"), p.File);
        Assert.Equal(4, p.Line);
        Assert.Contains("allowed [-1, 4]", p.Message);
    }

    [Fact]
    public void ChildOverridingABadBaseValue_IsValid()
    {
        using var dir = new TempConfigDir();
        dir.Write("base.yaml", "train:\n  epochs: 0\n");
        var child = dir.Write("child.yaml", "_base_: base.yaml\ntrain:\n  epochs: 3\n");

        Assert.Equal(3, ConfigLoader.Load(child).Train.Epochs);
    }

    [Fact]
    public void CrossFieldChecks_PointAtTheOffendingKey()
    {
        using var dir = new TempConfigDir();
        var file = dir.Write("x.yaml", "model:\n  backbone:\n    depth: 42\n  head:\n    strides: [8, 16, 32]\ntrain:\n  schedule:\n    steps: [11, 8]\n");

        var byKey = LoadFails(file).Problems.ToDictionary(p => p.Key);

        Assert.Contains("not allowed; one of 18, 34, 50, 101, 152", byKey["model.backbone.depth"].Message);
        Assert.Equal(3, byKey["model.backbone.depth"].Line);
        Assert.Equal(5, byKey["model.head.strides"].Line);
        Assert.Contains("num_outs is 5", byKey["model.head.strides"].Message);
        Assert.Contains("strictly increasing", byKey["train.schedule.steps"].Message);
    }

    /// <summary>cuDNN autotuning picks kernels by timing: refused together with deterministic training, naming the key
    /// and its line.</summary>
    [Fact]
    public void CudnnBenchmark_WithDeterministicTraining_IsRefused()
    {
        using var dir = new TempConfigDir();
        var file = dir.Write("x.yaml", "runtime:\n  cudnn_benchmark: true\ntrain:\n  deterministic: true\n");
        var problem = LoadFails(file).Problems.Single();
        Assert.Equal("runtime.cudnn_benchmark", problem.Key);
        Assert.Equal(2, problem.Line);
        Assert.Contains("train.deterministic", problem.Message);
        Assert.Equal(true, ConfigLoader.Load(file, ["train.deterministic=false"]).Runtime.CudnnBenchmark);
    }

    /// <summary>runtime.loss_reads: auto resolves to reading every step on the CPU and to log_interval on CUDA (fp16 included:
    /// its loss scale then lives on the device); an unknown value is refused naming the key and its line.</summary>
    [Fact]
    public void LossReads_AutoResolvesByDevice_AndAnUnknownValueIsRefused()
    {
        using var dir = new TempConfigDir();
        var file = dir.Write("x.yaml", "train:\n  amp: fp16\nruntime:\n  loss_reads: log_interval\n");
        Assert.True(ConfigLoader.Load(file).Runtime.DefersLossReads(onCuda: false));
        var auto = ConfigLoader.Load(file, ["runtime.loss_reads=auto"]).Runtime;
        Assert.True(auto.DefersLossReads(onCuda: true));
        Assert.False(auto.DefersLossReads(onCuda: false));
        Assert.False(ConfigLoader.Load(file, ["runtime.loss_reads=step"]).Runtime.DefersLossReads(onCuda: true));
        var bad = dir.Write("y.yaml", "runtime:\n  loss_reads: sometimes\n");
        var problem = LoadFails(bad).Problems.Single();
        Assert.Equal("runtime.loss_reads", problem.Key);
        Assert.Equal(2, problem.Line);
    }

    /// <summary>Values only the GFL reference implements are rejected by the loader (so <c>gfl config check</c> says so),
    /// not when training starts; each problem names its key and line.</summary>
    [Fact]
    public void ValuesOnlyTheReferenceImplements_AreRejectedAtLoad()
    {
        using var dir = new TempConfigDir();
        var file = dir.Write("x.yaml", """
            model:
              neck:
                start_level: 0
                add_extra_convs: none
                relu_before_extra_convs: true
              head:
                strides: [8, 16, 32, 64, 256]
            data:
              keep_ratio: false
              to_rgb: false
            train:
              optimizer:
                momentum: 0
                nesterov: true
            """);

        var byKey = LoadFails(file).Problems.ToDictionary(p => p.Key);

        Assert.Equal(3, byKey["model.neck.start_level"].Line);
        Assert.Contains("only 1", byKey["model.neck.start_level"].Message);
        Assert.Contains("on_output (GFL, ATSS) and on_input (RetinaNet) are implemented", byKey["model.neck.add_extra_convs"].Message);
        Assert.Contains("none", byKey["model.neck.add_extra_convs"].Message);
        Assert.Equal(5, byKey["model.neck.relu_before_extra_convs"].Line);
        Assert.Contains("8, 16, 32, 64, 128", byKey["model.head.strides"].Message);
        Assert.Equal(9, byKey["data.keep_ratio"].Line);
        Assert.Equal(10, byKey["data.to_rgb"].Line);
        Assert.Contains("momentum > 0", byKey["train.optimizer.nesterov"].Message);
        Assert.Equal(7, byKey.Count);
    }

    [Fact]
    public void MissingOrCircularBase_AndYamlSyntaxErrors_AreProblems()
    {
        using var dir = new TempConfigDir();
        var missing = dir.Write("missing.yaml", "_base_: nowhere.yaml\n");
        dir.Write("a.yaml", "_base_: b.yaml\n");
        dir.Write("b.yaml", "_base_: a.yaml\n");
        var syntax = dir.Write("syntax.yaml", "train:\n  epochs: [1, 2\n");

        Assert.Contains("base file not found", Assert.Single(LoadFails(missing).Problems).Message);
        Assert.Contains("circular", Assert.Single(LoadFails(Path.Combine(dir.Root, "a.yaml")).Problems).Message);
        var p = Assert.Single(LoadFails(syntax).Problems);
        Assert.EndsWith("syntax.yaml", p.File);
        Assert.True(p.Line > 0);
    }

    [Fact]
    public void MissingConfigFile_IsAConfigError()
    {
        var e = Assert.Throws<GflConfigException>(() => ConfigLoader.Load("/nonexistent/gfl.yaml"));
        Assert.Contains("config file not found", e.Message);
    }
}
