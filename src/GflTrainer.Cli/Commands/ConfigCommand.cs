using System.CommandLine;
using GflTrainer.Config;
using Serilog.Events;

namespace GflTrainer.Cli.Commands;

/// <summary><c>gfl config show|check|keys</c>: print the resolved configuration, validate it, or list every key.
/// <see cref="ConfigFileOption"/>, <see cref="SetOption"/> and <see cref="Load"/> are shared with the commands
/// that take a config (train, eval).</summary>
public static class ConfigCommand
{
    /// <summary><c>--config FILE</c> (required).</summary>
    public static Option<FileInfo> ConfigFileOption() => new("--config", "-c")
    {
        Description = "Config YAML (with _base_ inheritance), e.g. configs/quickstart.yaml",
        Required = true,
    };

    /// <summary><c>--set key=value</c>, repeatable; e.g. <c>--set train.optimizer.lr=0.02 data.img_scale=[640,480]</c>.</summary>
    public static Option<string[]> SetOption() => new("--set")
    {
        Description = "Override a config key: --set train.optimizer.lr=0.02 (repeatable; lists as [1,2] or 1,2)",
        AllowMultipleArgumentsPerToken = true,
    };

    /// <summary>The resolved config for a parsed command line.</summary>
    public static GflConfig Load(ParseResult parse, Option<FileInfo> config, Option<string[]> set) =>
        ConfigLoader.Load(parse.GetValue(config)!.FullName, parse.GetValue(set) ?? []);

    /// <summary>The device a run uses: <c>--device</c> when given on the command line, else <c>runtime.device</c>.</summary>
    public static string Device(ParseResult parse, GflConfig config) =>
        parse.GetResult(GlobalOptions.Device) is { Implicit: false } ? parse.GetValue(GlobalOptions.Device)! : config.Runtime.Device;

    /// <summary>The log level a run uses: <c>--log-level</c> when given on the command line, else
    /// <c>runtime.log_level</c> (a run's console logger is made at this level).</summary>
    public static LogEventLevel LogLevel(ParseResult parse, GflConfig config) =>
        parse.GetResult(GlobalOptions.LogLevel) is { Implicit: false }
            ? GlobalOptions.ParseLevel(parse.GetValue(GlobalOptions.LogLevel))
            : config.Runtime.LogLevel switch
            {
                ConfigLogLevel.Debug => LogEventLevel.Debug,
                ConfigLogLevel.Warning => LogEventLevel.Warning,
                ConfigLogLevel.Error => LogEventLevel.Error,
                _ => LogEventLevel.Information,
            };

    /// <summary>The <c>config</c> command with its subcommands.</summary>
    public static Command Create()
    {
        var cmd = new Command("config", "Inspect configurations");
        cmd.Subcommands.Add(Show());
        cmd.Subcommands.Add(Check());
        cmd.Subcommands.Add(Keys());
        return cmd;
    }

    static Command Show()
    {
        var config = ConfigFileOption();
        var set = SetOption();
        var cmd = new Command("show", "Print the fully resolved configuration (bases and --set applied) as YAML") { config, set };
        cmd.SetAction(parse => GlobalOptions.Execute(parse, ctx =>
        {
            ctx.Out.Write(ConfigWriter.ToYaml(Load(parse, config, set)));
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    static Command Check()
    {
        var config = ConfigFileOption();
        var set = SetOption();
        var cmd = new Command("check", "Validate a configuration (and, when data.train.ann_file exists, its rules against that " +
            "file); exit 0 when valid, 2 with every problem listed otherwise") { config, set };
        cmd.SetAction(parse => GlobalOptions.Execute(parse, ctx =>
        {
            var resolved = Load(parse, config, set);
            if (Data.DataRules.CheckFiles(resolved) is { } checkedData) ctx.Out.WriteLine($"ok: {checkedData}");
            ctx.Out.WriteLine($"ok: {parse.GetValue(config)!.Name}");
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    static Command Keys()
    {
        var cmd = new Command("keys", "List every config key with type, default, allowed values and meaning (Markdown table)");
        cmd.SetAction(parse => GlobalOptions.Execute(parse, ctx =>
        {
            ctx.Out.Write(ConfigReference.MarkdownTable());
            return ExitCodes.Ok;
        }));
        return cmd;
    }
}
