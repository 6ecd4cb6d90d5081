using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Support;

/// <summary>One case of shared/fixtures/gfl (format "gfl-fixture/1"): tensors are {shape, dtype, data} objects with
/// row-major data; float32 values are the shortest decimals that read back to the same float.</summary>
internal sealed class GflFixture
{
    private GflFixture(JsonElement root)
    {
        Root = root;
        Params = root.GetProperty("params");
        Inputs = root.GetProperty("inputs");
        Expected = root.GetProperty("expected");
    }

    public JsonElement Root { get; }
    public JsonElement Params { get; }
    public JsonElement Inputs { get; }
    public JsonElement Expected { get; }

    public static GflFixture Load(string kind, string file)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(TestPaths.Fixtures("gfl", kind, file)));
        var root = doc.RootElement.Clone();
        if (root.GetProperty("format").GetString() != "gfl-fixture/1")
            throw new InvalidDataException($"{kind}/{file}: unknown fixture format");
        return new GflFixture(root);
    }

    public static Tensor ToTensor(JsonElement e)
    {
        var shape = e.GetProperty("shape").EnumerateArray().Select(v => v.GetInt64()).ToArray();
        var data = e.GetProperty("data");
        return e.GetProperty("dtype").GetString() switch
        {
            "float32" => tensor(data.EnumerateArray().Select(v => v.GetSingle()).ToArray()).reshape(shape),
            "int64" => tensor(data.EnumerateArray().Select(v => v.GetInt64()).ToArray()).reshape(shape),
            "bool" => tensor(data.EnumerateArray().Select(v => v.GetInt64() != 0).ToArray()).reshape(shape),
            var other => throw new InvalidDataException($"unknown dtype {other}"),
        };
    }

    public static IReadOnlyList<Tensor> ToTensors(JsonElement list) => list.EnumerateArray().Select(ToTensor).ToArray();

    public static long[] Longs(JsonElement e) => e.EnumerateArray().Select(v => v.GetInt64()).ToArray();

    public static int[] Ints(JsonElement e) => e.EnumerateArray().Select(v => v.GetInt32()).ToArray();

    public static double[] Doubles(JsonElement e) => e.EnumerateArray().Select(v => v.GetDouble()).ToArray();

    public static (int H, int W) Shape(JsonElement e) => (e[0].GetInt32(), e[1].GetInt32());

    public static (int H, int W)[] Shapes(JsonElement e) => e.EnumerateArray().Select(Shape).ToArray();

    public Tensor Input(string name) => ToTensor(Inputs.GetProperty(name));

    public Tensor Output(string name) => ToTensor(Expected.GetProperty(name));
}
