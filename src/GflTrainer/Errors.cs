namespace GflTrainer;

// gfl's error types. Each carries what went wrong as data (key, file, line, tensor) besides its one-line message;
// the CLI maps them to exit codes in one place (GflTrainer.Cli.ErrorReport).

/// <summary>Bad configuration or usage: exit code 2.</summary>
public class GflConfigException(string message, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>The dotted config key (<c>train.optimizer.lr</c>) or command-line option (<c>--device</c>) at fault,
    /// when one is.</summary>
    public string? Key { get; init; }
}

/// <summary>A failure the user can act on (bad data file, missing checkpoint, NaN loss): exit code 1,
/// printed as one line without a stack trace.</summary>
public class GflRuntimeException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>A data file (annotations, image list, dataset folder) that cannot be used; the message starts with the
/// file and, when known, the 1-based line.</summary>
public class DataFileException(string file, string message, int line = 0, Exception? inner = null)
    : GflRuntimeException(line > 0 ? $"{file}:{line}: {message}" : $"{file}: {message}", inner)
{
    public string File { get; } = file;

    /// <summary>1-based line, 0 when the problem is not at one line.</summary>
    public int Line { get; } = line;
}

/// <summary>A checkpoint or weights file that is missing, incomplete, corrupt or does not fit the model; names the
/// file and, when the problem is one tensor, that tensor.</summary>
public sealed class CheckpointException(string path, string message, string? tensor = null, Exception? inner = null)
    : GflRuntimeException($"{path}: {message}", inner)
{
    public string Path { get; } = path;

    /// <summary>The state-dict key of the offending tensor, when there is one.</summary>
    public string? Tensor { get; } = tensor;
}

/// <summary>A write failed because the file system is full or the quota is spent (ENOSPC, EDQUOT), or a free-space
/// check before a write found too little room; names the path and, when known, the bytes needed and free.</summary>
public sealed class DiskFullException(string path, string message, long neededBytes = 0, long freeBytes = -1, Exception? inner = null)
    : GflRuntimeException($"disk full writing {path}: {message}", inner)
{
    public string Path { get; } = path;

    /// <summary>Bytes the write needed (an estimate), 0 when unknown.</summary>
    public long NeededBytes { get; } = neededBytes;

    /// <summary>Bytes free for this user on that file system when the error was raised, -1 when unknown.</summary>
    public long FreeBytes { get; } = freeBytes;
}

/// <summary>Another <c>gfl train</c> holds the work directory's lock (<see cref="Training.WorkDirLock"/>): exit code 2,
/// like any other usage error, since the fix is another work directory or waiting for that run.</summary>
public sealed class WorkDirLockedException(string workDir, string message) : GflConfigException(message)
{
    public string WorkDir { get; } = workDir;
}
