using GflTrainer.Cli;

return GflApp.Run(args);
