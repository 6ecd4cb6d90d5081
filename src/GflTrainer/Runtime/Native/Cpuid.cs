using System.Globalization;
using System.Runtime.Intrinsics.X86;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace GflTrainer.Runtime.Native;

/// <summary>The four registers one CPUID query returns.</summary>
public readonly record struct CpuidResult(uint Eax, uint Ebx, uint Ecx, uint Edx)
{
    public static readonly CpuidResult Zero = default;
}

/// <summary>A source of CPUID answers: the processor itself, or a recording of another machine's answers (so that
/// the cache-topology logic can be tested on every machine against the machines where it matters).</summary>
public interface ICpuid
{
    CpuidResult Query(uint leaf, uint subleaf);
}

/// <summary>The CPUID instruction of this processor (x86-64 only; <see cref="IsSupported"/> is false elsewhere).</summary>
public sealed class HardwareCpuid : ICpuid
{
    public static readonly HardwareCpuid Instance = new();

    public static bool IsSupported => X86Base.IsSupported;

    public CpuidResult Query(uint leaf, uint subleaf)
    {
        if (!X86Base.IsSupported) return CpuidResult.Zero;
        var (a, b, c, d) = X86Base.CpuId(unchecked((int)leaf), unchecked((int)subleaf));
        return new CpuidResult(unchecked((uint)a), unchecked((uint)b), unchecked((uint)c), unchecked((uint)d));
    }
}

/// <summary>
/// Recorded CPUID answers (<c>gfl doctor --record-cpuid FILE</c> writes one), format "gfl-cpuid/1":
/// <c>{"format", "machine", "leaves": [{"leaf": "0x8000001d", "subleaf": 0, "eax": "0x..", "ebx", "ecx", "edx"}]}</c>.
/// A leaf that is not recorded answers zeros, as AMD processors do for leaves they do not implement; a recording
/// therefore holds every leaf that <see cref="XbyakCacheTable"/> and <see cref="CacheTopology"/> read
/// (<see cref="LeavesToRecord"/>).
/// </summary>
public sealed class CpuidRecording : ICpuid
{
    private readonly Dictionary<(uint, uint), CpuidResult> _answers;

    public CpuidRecording(string machine, IReadOnlyDictionary<(uint Leaf, uint Subleaf), CpuidResult> answers)
    {
        Machine = machine;
        _answers = new Dictionary<(uint, uint), CpuidResult>(answers);
    }

    public string Machine { get; }

    public CpuidResult Query(uint leaf, uint subleaf) =>
        _answers.TryGetValue((leaf, subleaf), out var r) ? r : CpuidResult.Zero;

    /// <summary>The (leaf, subleaf) pairs the cache logic reads: vendor and family, x2APIC topology (0xB), Intel's
    /// deterministic cache parameters (4), AMD's extended feature, legacy cache (0x80000005/6), size (0x80000008)
    /// and cache topology (0x8000001D) leaves.</summary>
    public static IEnumerable<(uint Leaf, uint Subleaf)> LeavesToRecord(ICpuid cpu)
    {
        yield return (0, 0);
        yield return (1, 0);
        uint maxBasic = cpu.Query(0, 0).Eax;
        if (maxBasic >= 4)
            for (uint i = 0; i < 10; i++)
            {
                yield return (4, i);
                if ((cpu.Query(4, i).Eax & 0x1f) == 0) break;
            }
        if (maxBasic >= 0xB)
        {
            yield return (0xB, 0);
            yield return (0xB, 1);
        }
        uint maxExt = cpu.Query(0x80000000, 0).Eax;
        yield return (0x80000000, 0);
        foreach (uint leaf in new uint[] { 0x80000001, 0x80000005, 0x80000006, 0x80000008 })
            if (maxExt >= leaf) yield return (leaf, 0);
        if (maxExt >= 0x8000001D)
            for (uint i = 0; i < 4; i++) yield return (0x8000001D, i);
    }

    /// <summary>Records this machine's (or any source's) answers to <see cref="LeavesToRecord"/>.</summary>
    public static CpuidRecording Record(ICpuid cpu, string machine) =>
        new(machine, LeavesToRecord(cpu).Distinct().ToDictionary(k => k, k => cpu.Query(k.Leaf, k.Subleaf)));

    public static CpuidRecording Load(string path)
    {
        JsonNode? root;
        try { root = JsonNode.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new GflConfigException($"{path}: not a CPUID recording ({e.Message})"); }
        catch (IOException e) { throw new GflConfigException($"{path}: {e.Message}"); }
        if (root?["format"]?.GetValue<string>() != "gfl-cpuid/1")
            throw new GflConfigException($"{path}: not a CPUID recording (expected \"format\": \"gfl-cpuid/1\")");
        var answers = new Dictionary<(uint, uint), CpuidResult>();
        int i = 0;
        foreach (var e in root["leaves"]?.AsArray() ?? throw new GflConfigException($"{path}: no \"leaves\" array"))
        {
            try
            {
                answers[(Hex(e!["leaf"]), e["subleaf"]!.GetValue<uint>())] =
                    new CpuidResult(Hex(e["eax"]), Hex(e["ebx"]), Hex(e["ecx"]), Hex(e["edx"]));
            }
            catch (Exception ex) when (ex is NullReferenceException or FormatException or InvalidOperationException)
            {
                throw new GflConfigException($"{path}: leaves[{i}]: expected leaf, subleaf, eax, ebx, ecx, edx ({ex.Message})");
            }
            i++;
        }
        return new CpuidRecording(root["machine"]?.GetValue<string>() ?? Path.GetFileNameWithoutExtension(path), answers);
    }

    public void Save(string path)
    {
        var leaves = new JsonArray();
        foreach (var ((leaf, sub), r) in _answers.OrderBy(kv => kv.Key.Item1).ThenBy(kv => kv.Key.Item2))
            leaves.Add(new JsonObject
            {
                ["leaf"] = $"0x{leaf:x}", ["subleaf"] = sub,
                ["eax"] = $"0x{r.Eax:x8}", ["ebx"] = $"0x{r.Ebx:x8}", ["ecx"] = $"0x{r.Ecx:x8}", ["edx"] = $"0x{r.Edx:x8}",
            });
        var root = new JsonObject { ["format"] = "gfl-cpuid/1", ["machine"] = Machine, ["leaves"] = leaves };
        File.WriteAllText(path, root.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    private static uint Hex(JsonNode? n)
    {
        var s = n!.GetValue<string>();
        return uint.Parse(s.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? s[2..] : s, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
    }
}

/// <summary>Vendor and model from CPUID leaves 0 and 1.</summary>
public static class CpuIdentity
{
    public static string Vendor(ICpuid cpu)
    {
        var r = cpu.Query(0, 0);
        Span<byte> b = stackalloc byte[12];
        BitConverter.TryWriteBytes(b[..4], r.Ebx);
        BitConverter.TryWriteBytes(b[4..8], r.Edx);
        BitConverter.TryWriteBytes(b[8..], r.Ecx);
        return System.Text.Encoding.ASCII.GetString(b).TrimEnd('\0');
    }

    public static bool IsAmd(ICpuid cpu) => Vendor(cpu) is "AuthenticAMD" or "HygonGenuine";

    public static bool IsIntel(ICpuid cpu) => Vendor(cpu) == "GenuineIntel";

    /// <summary>Display family and model as the kernel and Xbyak compute them (family 0xF adds the extended family;
    /// family 6 and 0xF add the extended model).</summary>
    public static (int Family, int Model) FamilyModel(ICpuid cpu)
    {
        uint a = cpu.Query(1, 0).Eax;
        int family = (int)((a >> 8) & 0xf), model = (int)((a >> 4) & 0xf);
        int extFamily = (int)((a >> 20) & 0xff), extModel = (int)((a >> 16) & 0xf);
        int displayFamily = family == 0xf ? family + extFamily : family;
        int displayModel = family is 6 or 0xf ? (extModel << 4) + model : model;
        return (displayFamily, displayModel);
    }
}
