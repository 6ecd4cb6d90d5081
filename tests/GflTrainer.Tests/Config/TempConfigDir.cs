namespace GflTrainer.Tests.Config;

/// <summary>A throw-away folder of YAML files for loader tests.</summary>
internal sealed class TempConfigDir : IDisposable
{
    public string Root { get; } = Directory.CreateTempSubdirectory("gfl-config-").FullName;

    /// <summary>Writes <paramref name="relativePath"/> (folders created) and returns its full path.</summary>
    public string Write(string relativePath, string yaml)
    {
        var path = Path.Combine(Root, relativePath);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, yaml.Replace("\r\n", "\n"));
        return path;
    }

    public void Dispose() => Directory.Delete(Root, recursive: true);
}
