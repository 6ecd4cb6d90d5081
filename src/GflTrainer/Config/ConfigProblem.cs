namespace GflTrainer.Config;

/// <summary>One problem found while loading a configuration.</summary>
/// <param name="File">The config file as given (relative to the working directory when below it), <c>--set</c>
/// for an override, or <c>(default)</c> when a cross-field check fails on a value nobody set.</param>
/// <param name="Line">1-based line in <paramref name="File"/>; 0 when there is none.</param>
/// <param name="Key">Dotted key, e.g. <c>model.head.num_classes</c>.</param>
/// <param name="Message">What is wrong and what is allowed.</param>
public sealed record ConfigProblem(string File, int Line, string Key, string Message)
{
    /// <summary><c>file:line: key: message</c>, one line.</summary>
    public override string ToString() => Line > 0 ? $"{File}:{Line}: {Key}: {Message}" : $"{File}: {Key}: {Message}";
}

/// <summary>Every problem of a configuration at once (exit code 2), one line each.</summary>
public sealed class ConfigValidationException(IReadOnlyList<ConfigProblem> problems)
    : GflConfigException(
        $"invalid configuration ({problems.Count} problem{(problems.Count == 1 ? "" : "s")}):"
        + string.Concat(problems.Select(p => "\n  " + p)))
{
    /// <summary>The problems, in the order they were found.</summary>
    public IReadOnlyList<ConfigProblem> Problems { get; } = problems;
}
