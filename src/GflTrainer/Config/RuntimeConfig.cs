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
    [Description("Run directory (checkpoints, logs, config.yaml); default runs/<config file name>.")]
    public string? WorkDir { get; init; }

    /// <summary>The run directory of a run of <paramref name="configPath"/>: work_dir, else runs/&lt;config file name&gt;.</summary>
    public string WorkDirFor(string configPath) => WorkDir ?? Path.Combine("runs", Path.GetFileNameWithoutExtension(configPath));

    [Description("auto (CUDA when available), cpu, cuda or cuda:N.")]
    public string Device { get; init; } = "auto";

    [Description("Run convolutions in the channels_last (NHWC) memory format (conv weights and input, PyTorch's memory_format=torch.channels_last): training, evaluation, prediction.")]
    public bool ChannelsLast { get; init; }

    [Description("cuDNN autotuning per input shape (torch.backends.cudnn.benchmark): pays with fixed input sizes; off as in mmdetection; CUDA only.")]
    public bool CudnnBenchmark { get; init; }

    [Description("Build the training targets (anchor assignment) in the data loader's worker threads, ahead of each step, instead of inside it: the same targets; on a GPU the step loses the assignment's kernels and two device-to-host syncs.")]
    public bool LoaderTargets { get; init; } = true;

    [Description("Log verbosity of gfl train (console and train.log); --log-level overrides it.")]
    public ConfigLogLevel LogLevel { get; init; } = ConfigLogLevel.Info;
}
