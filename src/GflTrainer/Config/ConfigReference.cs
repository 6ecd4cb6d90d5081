using System.Text;

namespace GflTrainer.Config;

/// <summary>The configuration reference generated from the records (README's table, <c>gfl config keys</c>).</summary>
public static class ConfigReference
{
    /// <summary>One Markdown row per key: dotted key, type, default, allowed values, meaning.</summary>
    public static string MarkdownTable()
    {
        var sb = new StringBuilder();
        sb.Append("| key | type | default | allowed | meaning |\n");
        sb.Append("|---|---|---|---|---|\n");
        Rows(sb, new GflConfig(), "");
        return sb.ToString();
    }

    static void Rows(StringBuilder sb, object defaults, string prefix)
    {
        foreach (var p in ConfigSchema.Properties(defaults.GetType()))
        {
            var path = prefix + p.Key;
            var value = p.Info.GetValue(defaults);
            if (ConfigSchema.IsRecord(p.ValueType))
            {
                if (p.Nullable)
                    sb.Append($"| `{path}` | section or null | {(value == null ? "null" : "section")} | | {Escape(p.Description)} |\n");
                Rows(sb, value ?? Activator.CreateInstance(p.ValueType)!, path + ".");
                continue;
            }
            var type = ConfigSchema.TypeName(p.Info.PropertyType) + (p.Nullable ? " or null" : "");
            var allowed = string.Join("; ", new[] { p.Allowed?.ToString(), p.Range?.ToString(), p.Length == null ? null : $"{p.Length} elements" }
                .Where(s => s != null));
            sb.Append($"| `{path}` | {type} | `{ConfigSchema.FormatValue(value)}` | {allowed} | {Escape(p.Description)} |\n");
        }
    }

    static string Escape(string s) => s.Replace("|", "\\|");
}
