using System.ComponentModel;

namespace GflTrainer.Config;

/// <summary>Training loop settings: mmdetection's <c>schedule_1x.py</c> with the GFL learning rate, and the
/// logging/checkpoint cadence of <c>default_runtime.py</c> (gfl_spec.md §6.1).</summary>
public sealed record TrainConfig
{
    [Description("Training epochs.")]
    [ConfigRange(1, 100000)]
    public int Epochs { get; init; } = 12;

    [Description("Optimizer.")]
    public OptimizerConfig Optimizer { get; init; } = new();

    [Description("Linear LR scaling by batch size.")]
    public AutoScaleLrConfig AutoScaleLr { get; init; } = new();

    [Description("Learning-rate warm-up and decay.")]
    public ScheduleConfig Schedule { get; init; } = new();

    [Description("Gradient-norm clipping, or null for none.")]
    public GradClipConfig? GradClip { get; init; }

    [Description("Mixed precision: off, bf16 or fp16 (autocast).")]
    public AmpMode Amp { get; init; } = AmpMode.Off;

    [Description("Random seed, or null to draw one (logged and saved with the run).")]
    [ConfigRange(0, int.MaxValue)]
    public int? Seed { get; init; }

    [Description("Deterministic kernels only (torch.use_deterministic_algorithms, cuDNN benchmark off); an op without one stops the run.")]
    public bool Deterministic { get; init; }

    [Description("Iterations between training log lines.")]
    [ConfigRange(1, double.PositiveInfinity)]
    public int LogInterval { get; init; } = 50;

    [Description("Checkpoint cadence and retention.")]
    public CheckpointConfig Checkpoint { get; init; } = new();

    [Description("Epochs between validation runs (0 = after the last epoch only).")]
    [ConfigRange(0, double.PositiveInfinity)]
    public int EvalInterval { get; init; } = 1;

    [Description("Save last and stop when anonymous memory passes this fraction of the cgroup limit (before the OOM killer); null disables it.")]
    [ConfigRange(0, 1, MinExclusive = true)]
    public double? MemoryLimitFraction { get; init; } = 0.95;

    [Description("Stop a run whose iteration hangs (data stall, stuck kernel): report, save last, exit 124; null disables it.")]
    public WatchdogConfig? Watchdog { get; init; } = new();

    [Description("Data-parallel training over the processes a launcher (torchrun, mpirun, srun) started.")]
    public DistConfig Dist { get; init; } = new();
}

/// <summary>Data-parallel training: one process per device, started by a launcher; see docs/distributed.md.</summary>
public sealed record DistConfig
{
    [Description("Collective backend: auto (NCCL on CUDA, MPI on CPU, none for one process), nccl, mpi or none.")]
    public DistBackend Backend { get; init; } = DistBackend.Auto;

    [Description("All-reduce the gradients of each backbone stage while backward runs through the stages before it (DDP's overlap); false: one all-reduce after backward. Same values up to float rounding.")]
    public bool OverlapBackward { get; init; } = true;
}

/// <summary>Collective communication engine of a data-parallel run.</summary>
public enum DistBackend
{
    /// <summary>NCCL on CUDA devices, Open MPI on the CPU, nothing for a single process.</summary>
    Auto,
    /// <summary>NVIDIA NCCL (libnccl.so.2), GPUs only.</summary>
    Nccl,
    /// <summary>Open MPI (libmpi.so.40), started by mpirun or srun.</summary>
    Mpi,
    /// <summary>One process; launcher variables are ignored.</summary>
    None,
}

/// <summary>The training-loop watchdog: an iteration (data wait + step) running longer than
/// max(factor x median iteration, min_seconds), or an evaluation batch longer than min_seconds, is a hang.</summary>
public sealed record WatchdogConfig
{
    [Description("Hang threshold: factor x the median iteration time (data wait + step).")]
    [ConfigRange(1, double.PositiveInfinity, MinExclusive = true)]
    public double Factor { get; init; } = 20;

    [Description("Hang threshold floor in seconds (the limit until 5 iterations give a median, and for each evaluation batch).")]
    [ConfigRange(0, double.PositiveInfinity, MinExclusive = true)]
    public double MinSeconds { get; init; } = 600;
}

/// <summary>Optimizer kinds the trainer builds.</summary>
public enum OptimizerType
{
    /// <summary>Stochastic gradient descent with momentum (PyTorch semantics).</summary>
    Sgd,
}

/// <summary>SGD with momentum and L2 weight decay on every trainable parameter (no per-parameter rules).</summary>
public sealed record OptimizerConfig
{
    [Description("Optimizer kind.")]
    public OptimizerType Type { get; init; } = OptimizerType.Sgd;

    [Description("Learning rate for auto_scale_lr.base_batch_size images per step, after warm-up and before decay (GFL: 0.01).")]
    [ConfigRange(0, 10, MinExclusive = true)]
    public double Lr { get; init; } = 0.01;

    [Description("SGD momentum.")]
    [ConfigRange(0, 1, MaxExclusive = true)]
    public double Momentum { get; init; } = 0.9;

    [Description("L2 weight decay on all trainable parameters (biases and norms included).")]
    [ConfigRange(0, 1)]
    public double WeightDecay { get; init; } = 1e-4;

    [Description("Nesterov momentum.")]
    public bool Nesterov { get; init; }
}

/// <summary>mmdetection <c>auto_scale_lr</c>: lr × batch_size / base_batch_size when enabled.</summary>
public sealed record AutoScaleLrConfig
{
    [Description("Scale lr by the global batch (world size x data.batch_size) / base_batch_size (mmdetection's auto_scale_lr).")]
    public bool Enabled { get; init; }

    [Description("Batch size the configured lr is meant for.")]
    [ConfigRange(1, double.PositiveInfinity)]
    public int BaseBatchSize { get; init; } = 16;
}

/// <summary>Decay after warm-up.</summary>
public enum LrPolicy
{
    /// <summary>Multiply by gamma at each epoch (or iteration) in steps.</summary>
    Step,
    /// <summary>Cosine annealing from lr to min_lr over the run.</summary>
    Cosine,
}

/// <summary>Warm-up shape.</summary>
public enum WarmupKind
{
    /// <summary>No warm-up.</summary>
    None,
    /// <summary>Factor rises linearly from warmup_ratio to 1.</summary>
    Linear,
    /// <summary>Factor warmup_ratio until warm-up ends.</summary>
    Constant,
}

/// <summary>Per-iteration warm-up followed by step or cosine decay (mmdetection LinearLR + MultiStepLR).</summary>
public sealed record ScheduleConfig
{
    [Description("Decay policy after warm-up.")]
    public LrPolicy Policy { get; init; } = LrPolicy.Step;

    [Description("Warm-up shape.")]
    public WarmupKind Warmup { get; init; } = WarmupKind.Linear;

    [Description("Warm-up length in iterations.")]
    [ConfigRange(0, double.PositiveInfinity)]
    public int WarmupIters { get; init; } = 500;

    [Description("LR factor at iteration 0: lr * (r + (1 - r) * it / warmup_iters).")]
    [ConfigRange(0, 1, MinExclusive = true)]
    public double WarmupRatio { get; init; } = 0.001;

    [Description("Step policy: epochs (iterations if by_epoch is false) after which lr *= gamma.")]
    [ConfigRange(1, double.PositiveInfinity)]
    [ConfigLength(0, 64)]
    public IReadOnlyList<int> Steps { get; init; } = [8, 11];

    [Description("Step decay factor.")]
    [ConfigRange(0, 1, MinExclusive = true)]
    public double Gamma { get; init; } = 0.1;

    [Description("Cosine policy: final learning rate.")]
    [ConfigRange(0, double.PositiveInfinity)]
    public double MinLr { get; init; }

    [Description("steps are epochs (true) or iterations (false).")]
    public bool ByEpoch { get; init; } = true;
}

/// <summary>Clip the global gradient norm before each optimizer step (torch clip_grad_norm_).</summary>
public sealed record GradClipConfig
{
    [Description("Largest allowed global gradient norm (mmdetection's FAQ suggests 35 against NaN losses).")]
    [ConfigRange(0, double.PositiveInfinity, MinExclusive = true)]
    public double MaxNorm { get; init; } = 35;

    [Description("p of the p-norm.")]
    [ConfigRange(0, double.PositiveInfinity, MinExclusive = true)]
    public double NormType { get; init; } = 2;
}

/// <summary>Mixed-precision mode.</summary>
public enum AmpMode
{
    /// <summary>Full fp32 (reference).</summary>
    Off,
    /// <summary>bfloat16 autocast, no loss scaling needed.</summary>
    Bf16,
    /// <summary>float16 autocast with dynamic loss scaling.</summary>
    Fp16,
}

/// <summary>Checkpoint cadence (mmdetection CheckpointHook).</summary>
public sealed record CheckpointConfig
{
    [Description("Epochs between checkpoints.")]
    [ConfigRange(1, double.PositiveInfinity)]
    public int Interval { get; init; } = 1;

    [Description("Epoch checkpoints kept (oldest deleted first), or null to keep all.")]
    [ConfigRange(1, double.PositiveInfinity)]
    public int? KeepLast { get; init; }
}
