using GflTrainer.Config;

namespace GflTrainer.Training;

/// <summary>What <c>gfl train</c> asks for.</summary>
/// <param name="ConfigPath">YAML config file.</param>
/// <param name="Overrides">--set key=value overrides, applied in order.</param>
/// <param name="WorkDir">--work-dir, or null for runtime.work_dir / runs/&lt;config name&gt;.</param>
/// <param name="Resume">null: no resume; "": resume from the work dir's last checkpoint; else a checkpoint path.</param>
/// <param name="AutoResume">resume from last if it exists, else start fresh (scheduled jobs).</param>
/// <param name="Device">--device, or null/"auto" to use runtime.device.</param>
/// <param name="ResumeChanged">--resume-changed: continue although the configuration, data or software differ from the
/// checkpoint's run (the differences are logged and recorded).</param>
/// <param name="Loaded">the config already loaded from <paramref name="ConfigPath"/> with <paramref name="Overrides"/>
/// (the CLI reads it first for runtime.log_level), or null to load it in the run.</param>
public sealed record TrainRequest(string ConfigPath, IReadOnlyList<string> Overrides, string? WorkDir = null,
    string? Resume = null, bool AutoResume = false, string? Device = null, bool ResumeChanged = false, GflConfig? Loaded = null);

/// <summary>Outcome of a training run.</summary>
public sealed record TrainResult(string WorkDir, int EpochsCompleted, long Iterations, double? LastAp, double? LastAp50,
    double? BestAp, string LastCheckpoint, bool Interrupted);
