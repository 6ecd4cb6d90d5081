using Google.Protobuf;

namespace GflTrainer.Export.Onnx;

/// <summary>The messages of onnx.proto (ONNX 1.12, IR version 8) that a model file needs, written with the protobuf
/// runtime's <see cref="CodedOutputStream"/>. Field numbers and wire types are those of
/// github.com/onnx/onnx/blob/v1.12.0/onnx/onnx.proto; only writing is needed, so each message is a record that encodes
/// itself. Nested messages are encoded first and written as length-delimited bytes.</summary>
internal static class OnnxProto
{
    /// <summary>TensorProto.DataType.</summary>
    public enum DataType { Float = 1, Uint8 = 2, Int8 = 3, Int32 = 6, Int64 = 7, Bool = 9, Float16 = 10, Double = 11 }

    internal static byte[] Encode(Action<CodedOutputStream> write)
    {
        using var ms = new MemoryStream();
        var output = new CodedOutputStream(ms);
        write(output);
        output.Flush();
        return ms.ToArray();
    }

    static void Message(CodedOutputStream o, int field, byte[] encoded)
    {
        o.WriteTag(field, WireFormat.WireType.LengthDelimited);
        o.WriteBytes(UnsafeByteOperations.UnsafeWrap(encoded));
    }

    static void String(CodedOutputStream o, int field, string? value)
    {
        if (string.IsNullOrEmpty(value)) return;
        o.WriteTag(field, WireFormat.WireType.LengthDelimited);
        o.WriteString(value);
    }

    static void Int64(CodedOutputStream o, int field, long value)
    {
        o.WriteTag(field, WireFormat.WireType.Varint);
        o.WriteInt64(value);
    }

    /// <summary>TensorProto: dims (1), data_type (2), name (8), raw_data (9, little-endian).</summary>
    public sealed record Tensor(string Name, DataType Type, long[] Dims, byte[] RawData)
    {
        public byte[] Encode() => OnnxProto.Encode(o =>
        {
            foreach (var d in Dims) Int64(o, 1, d);
            Int64(o, 2, (int)Type);
            String(o, 8, Name);
            o.WriteTag(9, WireFormat.WireType.LengthDelimited);
            o.WriteBytes(UnsafeByteOperations.UnsafeWrap(RawData));
        });
    }

    /// <summary>AttributeProto: name (1), f (2), i (3), s (4), t (5), floats (7), ints (8), type (20).</summary>
    public sealed record Attribute(string Name, long? Int = null, float? Float = null, string? Str = null, long[]? Ints = null,
        float[]? Floats = null, Tensor? Value = null)
    {
        public byte[] Encode() => OnnxProto.Encode(o =>
        {
            String(o, 1, Name);
            int type;
            if (Float is { } f) { o.WriteTag(2, WireFormat.WireType.Fixed32); o.WriteFloat(f); type = 1; }
            else if (Int is { } i) { Int64(o, 3, i); type = 2; }
            else if (Str is not null) { o.WriteTag(4, WireFormat.WireType.LengthDelimited); o.WriteBytes(ByteString.CopyFromUtf8(Str)); type = 3; }
            else if (Value is not null) { Message(o, 5, Value.Encode()); type = 4; }
            else if (Floats is not null) { foreach (var x in Floats) { o.WriteTag(7, WireFormat.WireType.Fixed32); o.WriteFloat(x); } type = 6; }
            else if (Ints is not null) { foreach (var x in Ints) Int64(o, 8, x); type = 7; }
            else throw new ArgumentException($"attribute {Name} has no value");
            Int64(o, 20, type);
        });
    }

    /// <summary>NodeProto: input (1), output (2), name (3), op_type (4), attribute (5), domain (7).</summary>
    public sealed record Node(string OpType, IReadOnlyList<string> Inputs, IReadOnlyList<string> Outputs, string Name,
        IReadOnlyList<Attribute> Attributes)
    {
        public byte[] Encode() => OnnxProto.Encode(o =>
        {
            foreach (var i in Inputs) { o.WriteTag(1, WireFormat.WireType.LengthDelimited); o.WriteString(i); }
            foreach (var x in Outputs) { o.WriteTag(2, WireFormat.WireType.LengthDelimited); o.WriteString(x); }
            String(o, 3, Name);
            String(o, 4, OpType);
            foreach (var a in Attributes) Message(o, 5, a.Encode());
        });
    }

    /// <summary>ValueInfoProto (name 1, type 2) of a tensor: TypeProto.tensor_type (1) = {elem_type 1, shape 2}; each
    /// TensorShapeProto.dim (1) is a dim_value (1) or a named dim_param (2).</summary>
    public sealed record ValueInfo(string Name, DataType Type, IReadOnlyList<object> Shape)
    {
        public byte[] Encode() => OnnxProto.Encode(o =>
        {
            String(o, 1, Name);
            var shape = OnnxProto.Encode(s =>
            {
                foreach (var d in Shape)
                    Message(s, 1, OnnxProto.Encode(dim =>
                    {
                        if (d is string param) String(dim, 2, param);
                        else Int64(dim, 1, Convert.ToInt64(d));
                    }));
            });
            var tensorType = OnnxProto.Encode(t => { Int64(t, 1, (int)Type); Message(t, 2, shape); });
            Message(o, 2, OnnxProto.Encode(t => Message(t, 1, tensorType)));
        });
    }

    /// <summary>GraphProto: node (1), name (2), initializer (5), input (11), output (12).</summary>
    public sealed record Graph(string Name, IReadOnlyList<Node> Nodes, IReadOnlyList<Tensor> Initializers,
        IReadOnlyList<ValueInfo> Inputs, IReadOnlyList<ValueInfo> Outputs)
    {
        public byte[] Encode() => OnnxProto.Encode(o =>
        {
            foreach (var n in Nodes) Message(o, 1, n.Encode());
            String(o, 2, Name);
            foreach (var t in Initializers) Message(o, 5, t.Encode());
            foreach (var i in Inputs) Message(o, 11, i.Encode());
            foreach (var x in Outputs) Message(o, 12, x.Encode());
        });
    }

    /// <summary>ModelProto: ir_version (1), producer_name (2), producer_version (3), doc_string (6), graph (7),
    /// opset_import (8: OperatorSetIdProto domain 1, version 2), metadata_props (14: StringStringEntryProto key 1, value 2).</summary>
    public sealed record Model(Graph Graph, long IrVersion, long Opset, string ProducerVersion, string Doc,
        IReadOnlyList<KeyValuePair<string, string>> Metadata)
    {
        public byte[] Encode() => OnnxProto.Encode(o =>
        {
            Int64(o, 1, IrVersion);
            String(o, 2, "gfl");
            String(o, 3, ProducerVersion);
            String(o, 6, Doc);
            Message(o, 7, Graph.Encode());
            Message(o, 8, OnnxProto.Encode(s => { Int64(s, 2, Opset); }));   // default domain "" (ai.onnx)
            foreach (var (k, v) in Metadata) Message(o, 14, OnnxProto.Encode(e => { String(e, 1, k); String(e, 2, v); }));
        });
    }
}
