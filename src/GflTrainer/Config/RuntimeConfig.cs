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

/// <summary>Where a run builds its training targets (<c>runtime.targets</c>).</summary>
public enum TargetsPlacement
{
    /// <summary>Loader on CUDA for one anchor per location (GFL, ATSS), otherwise step.</summary>
    Auto,
    /// <summary>The data loader's worker threads, ahead of each step.</summary>
    Loader,
    /// <summary>Inside the step, as mmdetection.</summary>
    Step,
}

/// <summary>When training reads a step's loss values back from the device (<c>runtime.loss_reads</c>).</summary>
public enum LossReadTiming
{
    /// <summary>log_interval on CUDA, step on the CPU.</summary>
    Auto,
    /// <summary>Every step, before its update.</summary>
    Step,
    /// <summary>Every train.log_interval steps, at the end of each epoch and before a stop.</summary>
    LogInterval,
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

    [Description("Where the training targets (anchor assignment) are built: loader (the data loader's worker threads, ahead of each step; the step loses the assignment's kernels and device-to-host reads), step (inside the step, as mmdetection) or auto (loader on CUDA for heads with one anchor per location, GFL and ATSS; otherwise step: on the CPU the workers would take cores from the step, and RetinaNet's 9 anchors per location cost the workers ~15x GFL's). The same targets either way.")]
    public TargetsPlacement Targets { get; init; } = TargetsPlacement.Auto;

    /// <summary>Whether the loader builds the targets (<see cref="Targets"/>) of a run.</summary>
    /// <param name="onCuda">the run trains on a CUDA device.</param>
    /// <param name="anchorsPerLocation">the head's anchors per feature-map cell (1 for GFL and ATSS, 9 for RetinaNet).</param>
    public bool TargetsInLoader(bool onCuda, int anchorsPerLocation) => Targets switch
    {
        TargetsPlacement.Loader => true,
        TargetsPlacement.Step => false,
        _ => onCuda && anchorsPerLocation == 1,
    };

    [Description("When training reads the loss values back from the device: step (every step; a non-finite loss is caught before its backward), log_interval (every train.log_interval steps, at the end of each epoch and before a stop: the steps between read nothing back, so on a GPU the host queues the next steps while the device runs; each step's update is applied or skipped on the device, a non-finite loss or gradient skips it and every later one, and the run stops at the next read naming that iteration, with the weights from before it, as with step) or auto (log_interval on CUDA, step on the CPU, where a read costs nothing). With train.amp fp16 the loss scale is then kept and updated on the device as well.")]
    public LossReadTiming LossReads { get; init; } = LossReadTiming.Auto;

    /// <summary>Whether a run's steps defer their loss reads (<see cref="LossReads"/>).</summary>
    public bool DefersLossReads(bool onCuda) => LossReads switch
    {
        LossReadTiming.LogInterval => true,
        LossReadTiming.Step => false,
        _ => onCuda,
    };

    [Description("Log verbosity of gfl train (console and train.log); --log-level overrides it.")]
    public ConfigLogLevel LogLevel { get; init; } = ConfigLogLevel.Info;
}
