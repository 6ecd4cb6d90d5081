using System.Globalization;

namespace GflTrainer.Config;

/// <summary>Binds a merged <see cref="ConfigMap"/> to the config records. It never stops at the first
/// problem: every unknown key, wrong type and out-of-range value is collected with its source.</summary>
internal sealed class ConfigBinder
{
    readonly List<ConfigProblem> _problems = [];
    readonly Dictionary<string, SourceMark> _marks = new(StringComparer.Ordinal);

    public IReadOnlyList<ConfigProblem> Problems => _problems;

    /// <summary>Where each bound key was set (dotted path → mark); keys left at their default are absent.</summary>
    public IReadOnlyDictionary<string, SourceMark> Marks => _marks;

    public void Report(SourceMark mark, string key, string message) => _problems.Add(mark.Problem(key, message));

    public T BindRoot<T>(ConfigMap root) where T : class, new()
    {
        var result = new T();
        BindRecord(result, root, "");
        return result;
    }

    /// <summary>Sets the properties named in <paramref name="map"/> on <paramref name="target"/>, a fresh
    /// instance holding the defaults (so a partial section keeps the defaults of the keys it omits).</summary>
    void BindRecord(object target, ConfigMap map, string prefix)
    {
        var properties = ConfigSchema.Properties(target.GetType());
        foreach (var entry in map.Entries.Values)
        {
            var path = prefix + entry.Key;
            var property = properties.FirstOrDefault(p => p.Key == entry.Key);
            if (property == null)
            {
                Report(entry.KeyMark, path, UnknownKeyMessage(entry.Key, prefix, properties));
                continue;
            }
            _marks[path] = entry.Value.Mark;
            if (TryBindValue(property, property.Info.PropertyType, entry.Value, path, property.Info.GetValue(target),
                    out var value))
                property.Info.SetValue(target, value);
        }
    }

    static string UnknownKeyMessage(string key, string prefix, IReadOnlyList<ConfigProperty> siblings)
    {
        var near = Levenshtein.Nearest(key, siblings.Select(p => p.Key));
        if (near != null) return $"unknown key '{key}' (did you mean '{prefix}{near}'?)";
        // A key that exists elsewhere under the same name was most likely put in the wrong section.
        var elsewhere = ConfigSchema.AllKeys(typeof(GflConfig)).Where(k => k.Property.Key == key).Select(k => k.Path).FirstOrDefault();
        if (elsewhere != null) return $"unknown key '{key}' (did you mean '{elsewhere}'?)";
        var scope = prefix.Length == 0 ? "top level" : $"'{prefix.TrimEnd('.')}'";
        return $"unknown key '{key}'; valid keys at {scope}: {string.Join(", ", siblings.Select(p => p.Key))}";
    }

    bool TryBindValue(ConfigProperty property, Type type, ConfigNode node, string path, object? current, out object? value)
    {
        value = null;
        var underlying = Nullable.GetUnderlyingType(type);
        bool nullable = underlying != null || (type == property.Info.PropertyType && property.Nullable);
        type = underlying ?? type;

        if (node is ConfigScalar { IsNull: true })
        {
            if (nullable) return true;
            Report(node.Mark, path, $"null is not allowed; expected {Expected(property, type)}");
            return false;
        }

        if (ConfigSchema.IsRecord(type))
        {
            if (node is not ConfigMap map)
            {
                Report(node.Mark, path, $"expected a section (key: value lines){(nullable ? " or null" : "")}, got {Describe(node)}");
                return false;
            }
            var record = current ?? Activator.CreateInstance(type)!;
            BindRecord(record, map, path + ".");
            value = record;
            return true;
        }

        if (ConfigSchema.ListElement(type) is { } element)
        {
            var items = node switch
            {
                ConfigList list => list.Items,
                // `--set a.b=1,2` arrives as one plain scalar; a list-valued key splits it.
                ConfigScalar { Quoted: false } s when s.Mark.File == ConfigOverride.SourceName =>
                    s.Text.Split(',').Select(t => (ConfigNode)new ConfigScalar(s.Mark, t.Trim(), false)).ToArray(),
                _ => null,
            };
            if (items == null)
            {
                Report(node.Mark, path, $"expected a list ([a, b, ...]) of {ConfigSchema.TypeName(element)}, got {Describe(node)}");
                return false;
            }
            if (property.Length is { } len && (items.Count < len.Min || items.Count > len.Max) && type == property.ValueType)
            {
                Report(node.Mark, path, $"has {items.Count} element{(items.Count == 1 ? "" : "s")}; expected {len}");
                return false;
            }
            var array = Array.CreateInstance(element, items.Count);
            bool ok = true;
            for (int i = 0; i < items.Count; i++)
            {
                if (TryBindValue(property, element, items[i], $"{path}[{i}]", null, out var item)) array.SetValue(item, i);
                else ok = false;
            }
            value = array;
            return ok;
        }

        if (node is not ConfigScalar scalar)
        {
            Report(node.Mark, path, $"expected {Expected(property, type)}, got {Describe(node)}");
            return false;
        }
        if (!TryParseScalar(type, scalar, out value))
        {
            Report(node.Mark, path, $"'{scalar.Text}' is not {Expected(property, type)}");
            return false;
        }
        if (property.Range is { } range && value is int or double && !range.Contains(Convert.ToDouble(value, CultureInfo.InvariantCulture)))
        {
            Report(node.Mark, path, $"{scalar.Text} is out of range; allowed {range}");
            return false;
        }
        if (property.Allowed is { } allowed && value is int n && !allowed.Values.Contains(n))
        {
            Report(node.Mark, path, $"{scalar.Text} is not allowed; {allowed}");
            return false;
        }
        return true;
    }

    static bool TryParseScalar(Type type, ConfigScalar s, out object? value)
    {
        value = null;
        if (type == typeof(string)) { value = s.Text; return true; }
        if (s.Quoted) return false; // "8" is a string in YAML, not a number
        var text = s.Text;
        if (type == typeof(int))
        {
            if (!int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var i)) return false;
            value = i;
            return true;
        }
        if (type == typeof(double))
        {
            if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) || !double.IsFinite(d)) return false;
            value = d;
            return true;
        }
        if (type == typeof(bool))
        {
            // YAML 1.2 core schema: only true/false (not yes/no/on/off).
            if (text is "true" or "True" or "TRUE") { value = true; return true; }
            if (text is "false" or "False" or "FALSE") { value = false; return true; }
            return false;
        }
        if (type.IsEnum)
        {
            var match = Enum.GetValues(type).Cast<Enum>()
                .FirstOrDefault(e => string.Equals(ConfigSchema.EnumKey(e), text, StringComparison.OrdinalIgnoreCase));
            value = match;
            return match != null;
        }
        throw new NotSupportedException($"config property type {type} has no YAML binding");
    }

    static string Expected(ConfigProperty property, Type type)
    {
        string what = type == typeof(int) ? "an integer"
            : type == typeof(double) ? "a number"
            : type == typeof(bool) ? "true or false"
            : type == typeof(string) ? "a string"
            : type.IsEnum ? "one of " + string.Join(", ", ConfigSchema.EnumKeys(type))
            : ConfigSchema.TypeName(type);
        if (property.Range != null && (type == typeof(int) || type == typeof(double))) what += $" in {property.Range}";
        return what;
    }

    static string Describe(ConfigNode node) => node switch
    {
        ConfigMap => "a section",
        ConfigList l => $"a list of {l.Items.Count}",
        ConfigScalar s => $"'{s.Text}'",
        _ => node.GetType().Name,
    };
}
