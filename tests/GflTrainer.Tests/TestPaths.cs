namespace GflTrainer.Tests;

/// <summary>Locations of test inputs: fixtures are copied next to the test assembly by the csproj.</summary>
public static class TestPaths
{
    public static string Fixtures(params string[] parts) =>
        Path.Combine(new[] { AppContext.BaseDirectory, "Fixtures" }.Concat(parts).ToArray());

    /// <summary>The repository root (the folder holding GflTrainer.sln).</summary>
    public static string RepoRoot()
    {
        var d = new DirectoryInfo(AppContext.BaseDirectory);
        while (d != null && !File.Exists(Path.Combine(d.FullName, "GflTrainer.sln"))) d = d.Parent;
        return d?.FullName ?? throw new InvalidOperationException("GflTrainer.sln not found above " + AppContext.BaseDirectory);
    }

    /// <summary>Every <c>*.json</c> case of a fixture kind, for data-driven theories.</summary>
    public static IEnumerable<object[]> JsonCases(params string[] kindFolder) =>
        Directory.EnumerateFiles(Fixtures(kindFolder), "*.json").OrderBy(p => p, StringComparer.Ordinal)
            .Select(p => new object[] { Path.GetFileName(p) });
}
