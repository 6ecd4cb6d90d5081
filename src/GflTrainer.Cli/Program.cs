using GflTrainer;
using GflTrainer.Cli;
using GflTrainer.Runtime;

NativeEnvironment.EnsureHugePageMalloc();   // may re-execute this process once; must run first
NativeEnvironment.Prepare();   // before libtorch (and its OpenMP runtime) loads
return GflApp.Run(args);
