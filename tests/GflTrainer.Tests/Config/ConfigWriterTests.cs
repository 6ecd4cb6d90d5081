using GflTrainer.Config;
using Xunit;

namespace GflTrainer.Tests.Config;

public sealed class ConfigWriterTests
{
    static GflConfig RoundTrip(GflConfig config, TempConfigDir dir)
    {
        var path = Path.Combine(dir.Root, "config.yaml");
        ConfigWriter.Save(config, path);
        return ConfigLoader.Load(path);
    }

    [Theory]
    [InlineData("r50_1x.yaml")]
    [InlineData("atss_r50_1x.yaml")]
    [InlineData("retinanet_r50_1x.yaml")]
    [InlineData("bccd_320_atss.yaml")]
    [InlineData("bccd_320_retinanet.yaml")]
    [InlineData("quickstart.yaml")]
    [InlineData("bccd.yaml")]
    public void Dump_OfEveryShippedConfig_LoadsBackToTheSameConfig(string file)
    {
        using var dir = new TempConfigDir();
        var config = ConfigLoader.Load(Path.Combine(TestPaths.RepoRoot(), "configs", file));

        var again = RoundTrip(config, dir);

        Assert.Equal(ConfigWriter.ToYaml(config), ConfigWriter.ToYaml(again));
        Assert.Equal(config.Model.Head, again.Model.Head with { Strides = config.Model.Head.Strides, Ratios = config.Model.Head.Ratios });
        Assert.Equal(config.Model.Head.Strides, again.Model.Head.Strides);
        Assert.Equal(config.Model.Head.Ratios, again.Model.Head.Ratios);
    }

    [Fact]
    public void Dump_KeepsValuesThatLookLikeOtherTypes()
    {
        using var dir = new TempConfigDir();
        var config = new GflConfig() with
        {
            Runtime = new RuntimeConfig { WorkDir = "null", Device = "cpu" },
            Model = new ModelConfig { Backbone = new BackboneConfig { Pretrained = "123" } },
            Data = new DataConfig
            {
                Train = new SplitConfig { AnnFile = "a: b.json", ImgPrefix = "true" },
                Multiscale = new MultiscaleConfig { Mode = MultiscaleMode.Value, Scales = [[1333, 640], [1333, 800]] },
            },
            Train = new TrainConfig { GradClip = new GradClipConfig { MaxNorm = 0.5 }, Seed = 3, Amp = AmpMode.Fp16 },
        };

        var again = RoundTrip(config, dir);

        Assert.Equal("null", again.Runtime.WorkDir);
        Assert.Equal("123", again.Model.Backbone.Pretrained);
        Assert.Equal("a: b.json", again.Data.Train.AnnFile);
        Assert.Equal("true", again.Data.Train.ImgPrefix);
        Assert.Equal(MultiscaleMode.Value, again.Data.Multiscale!.Mode);
        Assert.Equal([1333, 640], again.Data.Multiscale.Scales[0]);
        Assert.Equal(0.5, again.Train.GradClip!.MaxNorm);
        Assert.Equal(AmpMode.Fp16, again.Train.Amp);
        Assert.Equal(ConfigWriter.ToYaml(config), ConfigWriter.ToYaml(again));
    }

    [Fact]
    public void Dump_WritesFloatsAsFloatsAndListsInFlowStyle()
    {
        var yaml = ConfigWriter.ToYaml(new GflConfig());

        Assert.Contains("    octave_base_scale: 8.0\n", yaml);
        Assert.Contains("    weight_decay: 0.0001\n", yaml);
        Assert.Contains("    strides: [8, 16, 32, 64, 128]\n", yaml);
        Assert.Contains("  grad_clip: null\n", yaml);
        Assert.DoesNotContain("...", yaml);
    }

    [Fact]
    public void Dump_LoadsBackFromText_AsACheckpointCarriesIt()
    {
        var config = ConfigLoader.Load(Path.Combine(TestPaths.RepoRoot(), "configs", "quickstart.yaml"));
        var yaml = ConfigWriter.ToYaml(config);

        var again = ConfigLoader.LoadYaml(yaml, "checkpoint:config.yaml");

        Assert.Equal(yaml, ConfigWriter.ToYaml(again));
        var e = Assert.Throws<ConfigValidationException>(() => ConfigLoader.LoadYaml("train:\n  epoch: 3\n", "ckpt.yaml"));
        Assert.Equal(2, Assert.Single(e.Problems).Line);
    }
}
