using System.Reflection;
using System.Reflection.Emit;

namespace GflTrainer.Tests.Architecture;

/// <summary>Which types each type of an assembly uses, read from the compiled code: base types, interfaces, fields,
/// signatures, attributes and every type, method and field token in the IL of method bodies (locals, calls,
/// <c>new</c>, casts, lambdas and iterators, which the compiler moves into nested types of the same namespace).
/// The build output is what runs, so a dependency cannot hide in a fully qualified name or a global using.</summary>
internal static class TypeDependencies
{
    const BindingFlags All = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static |
        BindingFlags.DeclaredOnly;

    static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (OpCode)f.GetValue(null)!)
        .ToDictionary(o => o.Value);

    /// <summary>For every type of <paramref name="assembly"/>, the distinct types it refers to.</summary>
    public static Dictionary<Type, HashSet<Type>> Of(Assembly assembly)
    {
        var result = new Dictionary<Type, HashSet<Type>>();
        foreach (var type in assembly.GetTypes())
        {
            var used = new HashSet<Type>();
            void Add(Type? t)
            {
                if (t is null) return;
                if (t.HasElementType) { Add(t.GetElementType()); return; }
                if (t.IsGenericParameter) return;
                if (t.IsGenericType && !t.IsGenericTypeDefinition)
                {
                    foreach (var a in t.GetGenericArguments()) Add(a);
                    t = t.GetGenericTypeDefinition();
                }
                used.Add(t);
            }
            Add(type.BaseType);
            foreach (var i in type.GetInterfaces()) Add(i);
            foreach (var a in type.GetCustomAttributesData()) Add(a.AttributeType);
            foreach (var f in type.GetFields(All)) Add(f.FieldType);
            foreach (var p in type.GetProperties(All)) Add(p.PropertyType);
            foreach (var m in type.GetMethods(All).Cast<MethodBase>().Concat(type.GetConstructors(All)))
            {
                if (m is MethodInfo mi) Add(mi.ReturnType);
                foreach (var p in m.GetParameters()) Add(p.ParameterType);
                foreach (var a in m.GetCustomAttributesData()) Add(a.AttributeType);
                var body = m.GetMethodBody();
                if (body is null) continue;
                foreach (var l in body.LocalVariables) Add(l.LocalType);
                foreach (var t in IlTypes(m, body.GetILAsByteArray() ?? [])) Add(t);
            }
            result[type] = used;
        }
        return result;
    }

    /// <summary>Types named by the operands of <paramref name="il"/>: the declaring types of called methods and
    /// accessed fields, and type tokens (newarr, castclass, ldtoken, ...).</summary>
    static IEnumerable<Type> IlTypes(MethodBase method, byte[] il)
    {
        var module = method.Module;
        var typeArgs = method.DeclaringType is { IsGenericType: true } d ? d.GetGenericArguments() : null;
        var methodArgs = method.IsGenericMethod ? method.GetGenericArguments() : null;
        for (int pos = 0; pos < il.Length;)
        {
            short value = il[pos++];
            if (value == 0xFE) value = (short)(0xFE00 | il[pos++]);
            if (!OpCodesByValue.TryGetValue(value, out var op)) yield break;   // unknown byte: stop rather than misread
            int size = op.OperandType switch
            {
                OperandType.InlineNone => 0,
                OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
                OperandType.InlineVar => 2,
                OperandType.InlineI8 or OperandType.InlineR => 8,
                OperandType.InlineSwitch => 4 + 4 * BitConverter.ToInt32(il, pos),
                _ => 4,
            };
            if (op.OperandType is OperandType.InlineMethod or OperandType.InlineField or OperandType.InlineType
                or OperandType.InlineTok)
            {
                int token = BitConverter.ToInt32(il, pos);
                MemberInfo? member = null;
                try { member = module.ResolveMember(token, typeArgs, methodArgs); }
                catch (ArgumentException) { }
                catch (TypeLoadException) { }
                switch (member)
                {
                    case Type t: yield return t; break;
                    case MethodBase mb:
                        if (mb.DeclaringType is { } dt) yield return dt;
                        if (mb is MethodInfo mi) yield return mi.ReturnType;
                        foreach (var p in mb.GetParameters()) yield return p.ParameterType;
                        if (mb.IsGenericMethod) foreach (var a in mb.GetGenericArguments()) yield return a;
                        break;
                    case FieldInfo f:
                        if (f.DeclaringType is { } ft) yield return ft;
                        yield return f.FieldType;
                        break;
                }
            }
            pos += size;
        }
    }
}
