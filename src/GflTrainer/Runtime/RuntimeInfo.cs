using TorchSharp;
using GflTrainer.Runtime.Native;

namespace GflTrainer.Runtime;

/// <summary><c>gfl info</c>: the versions, devices, threads and CPU facts a bug report needs.</summary>
public static class RuntimeInfo
{
    /// <param name="gflVersion">the program's informational version.</param>
    /// <param name="deviceSpec">the <c>--device</c> value, shown as it resolves here.</param>
    public static void Write(TextWriter output, string gflVersion, string? deviceSpec, Serilog.ILogger? log = null)
    {
        var ts = typeof(torch).Assembly.GetName().Version;
        output.WriteLine($"gfl            {gflVersion.Split('+')[0]}");
        output.WriteLine($"TorchSharp     {ts?.ToString(3)}");
        output.WriteLine($"libtorch       {torch.__version__}");
        output.WriteLine($".NET           {Environment.Version}");
        output.WriteLine($"OS             {System.Runtime.InteropServices.RuntimeInformation.OSDescription}");
        bool cuda = torch.cuda.is_available();
        output.WriteLine($"CUDA available {(cuda ? "yes" : "no")}");
        if (cuda)
        {
            output.WriteLine($"CUDA devices   {torch.cuda.device_count()}");
            output.WriteLine($"cuDNN          {(torch.cuda.is_cudnn_available() ? "yes" : "no")}");
        }
        output.WriteLine($"torch threads  {torch.get_num_threads()} (intra-op), {torch.get_num_interop_threads()} (inter-op)");
        output.WriteLine($"CPU cores      {Environment.ProcessorCount}");
        output.WriteLine($"malloc         {(NativeEnvironment.HugePageMallocActive ? "huge pages for large blocks (GLIBC_TUNABLES " + NativeEnvironment.HugePageTunable + ")" : "default")}");
        var device = DeviceSelector.Resolve(deviceSpec, log);
        output.WriteLine($"--device       {device}");
        var cpu = TorchRuntime.Cpu;
        output.WriteLine($"CPU            {cpu.Cpu}");
        output.WriteLine($"CPU caches     {cpu.FromCpuid}{(cpu.Implausible ? " (implausible: hidden by the hypervisor)" : "")}");
        output.WriteLine($"CPU workaround {OneDnnCacheWorkaround.Name(cpu.Action)}{(cpu.Written is { } w ? $": oneDNN uses [{w}] from {cpu.Detail}" : "")} ({OneDnnCacheWorkaround.ModeVariable}={OneDnnCacheWorkaround.Name(cpu.Mode)}; 'gfl doctor' checks the gradients)");
    }
}
