using System.ComponentModel;

namespace GflTrainer.Config;

/// <summary>Log verbosity.</summary>
public enum ConfigLogLevel
{
    /// <summary>Everything, stack traces included.</summary>
    Debug,
    /// <summary>Progress lines.</summary>
    Info,
    /// <summary>Warnings and errors.</summary>
    Warning,
    /// <summary>Errors only.</summary>
    Error,
}

/// <summary>Where and on what a run executes (mmdetection <c>default_runtime.py</c> and <c>work_dir</c>).</summary>
public sealed record RuntimeConfig
{
    /// <summary>Run directory (checkpoints, logs, config.yaml). When absent the loader sets
    /// <c>runs/&lt;config file name without extension&gt;</c>, like mmdetection's work_dirs/&lt;config&gt;.</summary>
    [Description("Run directory; default runs/<config file name>.")]
    public string? WorkDir { get; init; }

    /// <summary>auto (CUDA when available), cpu, cuda or cuda:N.</summary>
    [Description("auto (CUDA when available), cpu, cuda or cuda:N.")]
    public string Device { get; init; } = "auto";

    /// <summary>Log verbosity. Reference: info.</summary>
    [Description("Log verbosity.")]
    public ConfigLogLevel LogLevel { get; init; } = ConfigLogLevel.Info;
}
