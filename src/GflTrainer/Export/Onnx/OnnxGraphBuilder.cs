using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace GflTrainer.Export.Onnx;

/// <summary>Builds an ONNX graph node by node: each call adds one operator (opset 17 semantics) and returns the name of
/// its output, and weights become initializers named after the state-dict keys they came from, so the graph reads like
/// the model.</summary>
internal sealed class OnnxGraphBuilder
{
    readonly List<OnnxProto.Node> _nodes = [];
    readonly List<OnnxProto.Tensor> _initializers = [];
    readonly Dictionary<string, string> _constants = [];
    readonly HashSet<string> _names = [];
    int _counter;

    public const int Opset = 17;
    public const int IrVersion = 8;

    string Fresh(string hint)
    {
        var name = hint;
        while (!_names.Add(name)) name = $"{hint}_{++_counter}";
        return name;
    }

    /// <summary>Store float32 weights as float16 (half the file), each followed by a Cast back to float32, so the graph
    /// computes and exchanges float32 as before.</summary>
    public bool HalfWeights { get; init; }

    /// <summary>A float32 (or int64) weight as an initializer; returns the name the graph reads it under.</summary>
    public string Initializer(string name, Tensor value)
    {
        if (HalfWeights && value.dtype == ScalarType.Float32)
        {
            using var half = value.detach().to_type(ScalarType.Float16);
            var stored = Store(name + "/fp16", half);
            return Op("Cast", name, [stored], Attr("to", (long)OnnxProto.DataType.Float));
        }
        return Store(name, value);
    }

    string Store(string name, Tensor value)
    {
        using var scope = NewDisposeScope();
        var host = value.detach().cpu().contiguous();
        var (type, bytes) = host.dtype switch
        {
            // raw_data is little-endian, as the tensor's own bytes on x86-64 and ARM64.
            ScalarType.Float32 => (OnnxProto.DataType.Float, host.bytes.ToArray()),
            ScalarType.Int64 => (OnnxProto.DataType.Int64, host.bytes.ToArray()),
            ScalarType.Float16 => (OnnxProto.DataType.Float16, host.bytes.ToArray()),
            var t => throw new NotSupportedException($"initializer of {t}"),
        };
        var unique = Fresh(name);
        _initializers.Add(new OnnxProto.Tensor(unique, type, host.shape, bytes));
        return unique;
    }

    /// <summary>A small int64 constant (shapes, axes), shared between uses.</summary>
    public string Ints(params long[] values)
    {
        var key = "i64:" + string.Join(",", values);
        if (_constants.TryGetValue(key, out var name)) return name;
        name = Fresh($"const_{string.Join("_", values).Replace('-', 'm')}");
        _initializers.Add(new OnnxProto.Tensor(name, OnnxProto.DataType.Int64, [values.Length],
            MemoryMarshal.AsBytes(values.AsSpan()).ToArray()));
        return _constants[key] = name;
    }

    /// <summary>An int64 scalar constant (0-d: Range's bounds), shared between uses.</summary>
    public string IntScalar(long value)
    {
        var key = "i64s:" + value;
        if (_constants.TryGetValue(key, out var name)) return name;
        name = Fresh($"const_s{value}".Replace('-', 'm'));
        _initializers.Add(new OnnxProto.Tensor(name, OnnxProto.DataType.Int64, [], BitConverter.GetBytes(value)));
        return _constants[key] = name;
    }

    /// <summary>A float32 scalar constant (0-d), shared between uses.</summary>
    public string Float(float value)
    {
        var key = "f32:" + value.ToString("R");
        if (_constants.TryGetValue(key, out var name)) return name;
        name = Fresh("const_f");
        _initializers.Add(new OnnxProto.Tensor(name, OnnxProto.DataType.Float, [], BitConverter.GetBytes(value)));
        return _constants[key] = name;
    }

    /// <summary>A small float32 vector constant (coder parameters), shared between uses and never halved: float16 would
    /// change 0.1 and 0.2.</summary>
    public string Floats(params float[] values)
    {
        var key = "f32v:" + string.Join(",", values.Select(v => v.ToString("R")));
        if (_constants.TryGetValue(key, out var name)) return name;
        name = Fresh("const_fv");
        _initializers.Add(new OnnxProto.Tensor(name, OnnxProto.DataType.Float, [values.Length],
            MemoryMarshal.AsBytes(values.AsSpan()).ToArray()));
        return _constants[key] = name;
    }

    /// <summary>Adds one node; returns its (first) output.</summary>
    public string Op(string opType, string outputHint, IReadOnlyList<string> inputs, params OnnxProto.Attribute[] attributes) =>
        OpMulti(opType, [outputHint], inputs, attributes)[0];

    public string[] OpMulti(string opType, IReadOnlyList<string> outputHints, IReadOnlyList<string> inputs, params OnnxProto.Attribute[] attributes)
    {
        var outputs = outputHints.Select(Fresh).ToArray();
        _nodes.Add(new OnnxProto.Node(opType, inputs, outputs, Fresh($"{opType}_{outputs[0]}"), attributes));
        return outputs;
    }

    public static OnnxProto.Attribute Attr(string name, long value) => new(name, Int: value);
    public static OnnxProto.Attribute Attr(string name, float value) => new(name, Float: value);
    public static OnnxProto.Attribute Attr(string name, string value) => new(name, Str: value);
    public static OnnxProto.Attribute Attr(string name, params long[] values) => new(name, Ints: values);

    /// <summary>Conv with PyTorch's symmetric padding.</summary>
    public string Conv(string x, string weight, string? bias, long kernel, long stride, long padding, string hint) =>
        Op("Conv", hint, bias is null ? [x, weight] : [x, weight, bias],
            Attr("kernel_shape", kernel, kernel), Attr("strides", stride, stride), Attr("pads", padding, padding, padding, padding),
            Attr("dilations", 1L, 1L), Attr("group", 1L));

    public string Relu(string x, string hint) => Op("Relu", hint, [x]);
    public string Add(string a, string b, string hint) => Op("Add", hint, [a, b]);
    public string Mul(string a, string b, string hint) => Op("Mul", hint, [a, b]);

    public OnnxProto.Graph Build(string name, IReadOnlyList<OnnxProto.ValueInfo> inputs, IReadOnlyList<OnnxProto.ValueInfo> outputs) =>
        new(name, _nodes, _initializers, inputs, outputs);
}
