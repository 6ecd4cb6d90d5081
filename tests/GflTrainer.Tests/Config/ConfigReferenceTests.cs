using GflTrainer.Config;
using Xunit;

namespace GflTrainer.Tests.Config;

public sealed class ConfigReferenceTests
{
    const string Begin = "<!-- config-reference:begin (generated: gfl config keys) -->";
    const string End = "<!-- config-reference:end -->";

    [Fact]
    public void Table_HasOneRowPerKey()
    {
        var table = ConfigReference.MarkdownTable();
        foreach (var (path, _) in ConfigSchema.AllKeys(typeof(GflConfig)).Where(k => !ConfigSchema.IsRecord(k.Property.ValueType) || k.Property.Nullable))
            Assert.Contains($"| `{path}` |", table);
        Assert.Contains("| `model.assigner.topk` | int | `9` | [1, 1000] |", table);
        Assert.Contains("| `train.schedule.policy` | step \\| cosine | `step` |", table);
    }

    /// <summary>README's configuration reference is the generated table, so it cannot drift from the records.
    /// After changing a record: <c>dotnet run --project src/GflTrainer.Cli -- config keys</c> and paste.</summary>
    [Fact]
    public void Readme_ContainsTheGeneratedTable()
    {
        var readme = File.ReadAllText(Path.Combine(TestPaths.RepoRoot(), "README.md")).Replace("\r\n", "\n");
        int begin = readme.IndexOf(Begin, StringComparison.Ordinal), end = readme.IndexOf(End, StringComparison.Ordinal);
        Assert.True(begin >= 0 && end > begin, $"README.md lacks the markers {Begin} ... {End}");

        var inReadme = readme[(begin + Begin.Length)..end].Trim('\n') + "\n";

        Assert.Equal(ConfigReference.MarkdownTable(), inReadme);
    }
}
