using System.Collections.Concurrent;
using System.ComponentModel;
using System.Globalization;
using System.Reflection;
using System.Text;

namespace GflTrainer.Config;

/// <summary>One YAML key of a config record: its snake_case name, CLR property and constraints.</summary>
internal sealed record ConfigProperty(
    string Key,
    PropertyInfo Info,
    bool Nullable,
    ConfigRangeAttribute? Range,
    ConfigLengthAttribute? Length,
    ConfigAllowedAttribute? Allowed,
    string Description)
{
    /// <summary>The property type without <see cref="System.Nullable{T}"/>.</summary>
    public Type ValueType => System.Nullable.GetUnderlyingType(Info.PropertyType) ?? Info.PropertyType;
}

/// <summary>Reflection over the config records: keys, types and constraints, shared by the binder, the
/// writer and the generated reference table, so the three cannot disagree.</summary>
internal static class ConfigSchema
{
    static readonly ConcurrentDictionary<Type, IReadOnlyList<ConfigProperty>> s_properties = new();
    static readonly NullabilityInfoContext s_nullability = new();

    public static IReadOnlyList<ConfigProperty> Properties(Type record) => s_properties.GetOrAdd(record, t =>
    {
        lock (s_nullability)
        {
            return t.GetProperties(BindingFlags.Public | BindingFlags.Instance)
                .Where(p => p.CanWrite && p.GetIndexParameters().Length == 0)
                .OrderBy(p => p.MetadataToken) // declaration order = YAML order
                .Select(p => new ConfigProperty(
                    p.GetCustomAttribute<ConfigKeyAttribute>()?.Name ?? SnakeCase(p.Name),
                    p,
                    System.Nullable.GetUnderlyingType(p.PropertyType) != null
                        || (!p.PropertyType.IsValueType && s_nullability.Create(p).WriteState == NullabilityState.Nullable),
                    p.GetCustomAttribute<ConfigRangeAttribute>(),
                    p.GetCustomAttribute<ConfigLengthAttribute>(),
                    p.GetCustomAttribute<ConfigAllowedAttribute>(),
                    p.GetCustomAttribute<DescriptionAttribute>()?.Description ?? ""))
                .ToArray();
        }
    });

    /// <summary>A nested section (a config record), as opposed to a scalar or a list.</summary>
    public static bool IsRecord(Type t) => t.IsClass && t != typeof(string) && t.Namespace == typeof(GflConfig).Namespace;

    /// <summary>The element type when <paramref name="t"/> is a list-valued key, else null.</summary>
    public static Type? ListElement(Type t) =>
        t.IsGenericType && t.GetGenericTypeDefinition() == typeof(IReadOnlyList<>) ? t.GetGenericArguments()[0] : null;

    /// <summary>PascalCase → snake_case: <c>NmsIou</c> → <c>nms_iou</c>, <c>Bf16</c> → <c>bf16</c>.</summary>
    public static string SnakeCase(string name)
    {
        var sb = new StringBuilder(name.Length + 4);
        for (int i = 0; i < name.Length; i++)
        {
            char c = name[i];
            if (char.IsUpper(c))
            {
                if (i > 0 && (char.IsLower(name[i - 1]) || char.IsDigit(name[i - 1])
                              || (i + 1 < name.Length && char.IsLower(name[i + 1]) && char.IsUpper(name[i - 1]))))
                    sb.Append('_');
                sb.Append(char.ToLowerInvariant(c));
            }
            else sb.Append(c);
        }
        return sb.ToString();
    }

    public static string EnumKey(Enum value) =>
        value.GetType().GetField(value.ToString())?.GetCustomAttribute<ConfigKeyAttribute>()?.Name
        ?? SnakeCase(value.ToString());

    public static IReadOnlyList<string> EnumKeys(Type enumType) =>
        Enum.GetValues(enumType).Cast<Enum>().Select(EnumKey).ToArray();

    /// <summary>Human name of a key's type, as error messages and the README show it.</summary>
    public static string TypeName(Type t)
    {
        t = System.Nullable.GetUnderlyingType(t) ?? t;
        if (t == typeof(int) || t == typeof(long)) return "int";
        if (t == typeof(double) || t == typeof(float)) return "float";
        if (t == typeof(bool)) return "bool";
        if (t == typeof(string)) return "string";
        if (t.IsEnum) return string.Join(" \\| ", EnumKeys(t));
        if (ListElement(t) is { } e) return $"list of {TypeName(e)}";
        return "section";
    }

    /// <summary>A value in YAML flow notation (defaults in the README, values in messages).</summary>
    public static string FormatValue(object? value) => value switch
    {
        null => "null",
        bool b => b ? "true" : "false",
        double d => FormatDouble(d),
        float f => FormatDouble(f),
        int or long => Convert.ToString(value, CultureInfo.InvariantCulture)!,
        Enum e => EnumKey(e),
        string s => s,
        System.Collections.IEnumerable list => "[" + string.Join(", ", list.Cast<object?>().Select(FormatValue)) + "]",
        _ => value.ToString() ?? "",
    };

    /// <summary>Round-trip formatting that still reads as a float (8 → 8.0, 1e-4 → 0.0001).</summary>
    public static string FormatDouble(double d)
    {
        var s = d.ToString("R", CultureInfo.InvariantCulture);
        return s.Contains('.') || s.Contains('E') || s.Contains("Infinity") || s.Contains("NaN") ? s : s + ".0";
    }

    /// <summary>Every key below <paramref name="root"/> as a dotted path, sections before their children.</summary>
    public static IEnumerable<(string Path, ConfigProperty Property)> AllKeys(Type root, string prefix = "")
    {
        foreach (var p in Properties(root))
        {
            var path = prefix + p.Key;
            yield return (path, p);
            if (IsRecord(p.ValueType))
                foreach (var child in AllKeys(p.ValueType, path + "."))
                    yield return child;
        }
    }
}
