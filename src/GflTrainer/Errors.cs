namespace GflTrainer;

/// <summary>Bad configuration or usage: the CLI maps it to exit code 2.</summary>
public class GflConfigException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>A failure the user can act on (bad data file, missing checkpoint, NaN loss): exit code 1,
/// printed as one line without a stack trace.</summary>
public class GflRuntimeException(string message, Exception? inner = null) : Exception(message, inner);
