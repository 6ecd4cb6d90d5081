namespace GflTrainer.Config;

/// <summary>A configuration as flat <c>dotted.key → value</c> pairs in YAML flow notation (a null section is one
/// entry with value <c>null</c>), for comparing two configurations key by key.</summary>
public static class ConfigValues
{
    public static IReadOnlyDictionary<string, string> Flatten(GflConfig config)
    {
        var values = new SortedDictionary<string, string>(StringComparer.Ordinal);
        Walk(config, "", values);
        return values;
    }

    static void Walk(object record, string prefix, IDictionary<string, string> values)
    {
        foreach (var p in ConfigSchema.Properties(record.GetType()))
        {
            var path = prefix + p.Key;
            var value = p.Info.GetValue(record);
            if (ConfigSchema.IsRecord(p.ValueType) && value is not null) Walk(value, path + ".", values);
            else values[path] = ConfigSchema.FormatValue(value);
        }
    }
}
