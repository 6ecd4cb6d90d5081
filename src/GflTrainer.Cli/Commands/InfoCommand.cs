using System.CommandLine;
using System.Reflection;
using TorchSharp;

namespace GflTrainer.Cli.Commands;

/// <summary><c>gfl info</c>: versions, CUDA availability and threads, so a bug report carries them.</summary>
public static class InfoCommand
{
    public static Command Create()
    {
        var cmd = new Command("info", "Print gfl, TorchSharp and libtorch versions, CUDA devices and threads");
        cmd.SetAction(parse => GlobalOptions.Execute(parse, _ =>
        {
            var gfl = typeof(GflApp).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "?";
            var ts = typeof(torch).Assembly.GetName().Version;
            Console.WriteLine($"gfl            {gfl.Split('+')[0]}");
            Console.WriteLine($"TorchSharp     {ts?.ToString(3)}");
            Console.WriteLine($"libtorch       {torch.__version__}");
            Console.WriteLine($".NET           {Environment.Version}");
            Console.WriteLine($"OS             {System.Runtime.InteropServices.RuntimeInformation.OSDescription}");
            bool cuda = torch.cuda.is_available();
            Console.WriteLine($"CUDA available {(cuda ? "yes" : "no")}");
            if (cuda)
            {
                Console.WriteLine($"CUDA devices   {torch.cuda.device_count()}");
                Console.WriteLine($"cuDNN          {(torch.cuda.is_cudnn_available() ? "yes" : "no")}");
            }
            Console.WriteLine($"torch threads  {torch.get_num_threads()} (intra-op), {torch.get_num_interop_threads()} (inter-op)");
            Console.WriteLine($"CPU cores      {Environment.ProcessorCount}");
            Console.WriteLine($"malloc         {(NativeEnvironment.HugePageMallocActive ? "huge pages for large blocks (GLIBC_TUNABLES " + NativeEnvironment.HugePageTunable + ")" : "default")}");
            var device = DeviceSelector.Resolve(parse.GetValue(GlobalOptions.Device));
            Console.WriteLine($"--device       {device}");
            var cpu = Native.TorchRuntime.Cpu;
            Console.WriteLine($"CPU            {cpu.Cpu}");
            Console.WriteLine($"CPU caches     {cpu.FromCpuid}{(cpu.Implausible ? " (implausible: hidden by the hypervisor)" : "")}");
            Console.WriteLine($"CPU workaround {Native.OneDnnCacheWorkaround.Name(cpu.Action)}{(cpu.Written is { } w ? $": oneDNN uses [{w}] from {cpu.Detail}" : "")} ({Native.OneDnnCacheWorkaround.ModeVariable}={Native.OneDnnCacheWorkaround.Name(cpu.Mode)}; 'gfl doctor' checks the gradients)");
            return ExitCodes.Ok;
        }));
        return cmd;
    }
}
