using GflTrainer;
using GflTrainer.Cli;

NativeEnvironment.Prepare();   // before libtorch (and its OpenMP runtime) loads
return GflApp.Run(args);
