using System.Runtime.InteropServices;

namespace GflTrainer;

/// <summary>Process-level settings for the native libraries; call before the first TorchSharp use.</summary>
public static class NativeEnvironment
{
    [DllImport("libc", EntryPoint = "setenv")]
    private static extern int SetEnv(string name, string value, int overwrite);

    /// <summary>
    /// Sets OMP_WAIT_POLICY=PASSIVE for libtorch's bundled libgomp unless the user set it. libgomp's default
    /// (ACTIVE) makes idle OpenMP threads spin between parallel regions; when anything else wants the cores (our
    /// loader threads, another process) every small op waits for descheduled spinning threads. Measured on the
    /// 2-core machine under load: a tiny-model training step took 3.09 s with the default and 0.196 s with PASSIVE,
    /// with bit-identical losses. libgomp reads the variable when it loads, and .NET's Environment.SetEnvironmentVariable
    /// does not reach the native environment on Unix, hence libc setenv.
    /// </summary>
    public static void Prepare()
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS()) return;
        if (Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") is not null) return;
        SetEnv("OMP_WAIT_POLICY", "PASSIVE", 0);
    }
}
