using Google.Protobuf;

namespace GflTrainer.Export.Onnx;

/// <summary>The messages of onnx.proto (ONNX 1.12, IR version 8) that a model file needs, written with the protobuf
/// runtime's <see cref="CodedOutputStream"/>. Field numbers and wire types are those of
/// github.com/onnx/onnx/blob/v1.12.0/onnx/onnx.proto; only writing is needed, so each message is a record that writes
/// itself. The file is written in one buffer of its exact size: nested messages are measured, then written in place
/// (encoding each into its own array first held the weights three to four times over: 1.4 GB for R18's 150 MB).</summary>
internal static class OnnxProto
{
    /// <summary>TensorProto.DataType.</summary>
    public enum DataType { Float = 1, Uint8 = 2, Int8 = 3, Int32 = 6, Int64 = 7, Bool = 9, Float16 = 10, Double = 11 }

    /// <summary>Writes fields to a stream, or only counts their bytes (<see cref="Measure"/>), with the same calls.</summary>
    internal sealed class Writer
    {
        readonly CodedOutputStream? _out;
        long _size;

        Writer(CodedOutputStream? output) => _out = output;

        public static long Measure(Action<Writer> body)
        {
            var w = new Writer(null);
            body(w);
            return w._size;
        }

        /// <summary>The message <paramref name="body"/> writes, in an array of exactly its size.</summary>
        public static byte[] Encode(Action<Writer> body)
        {
            long size = Measure(body);
            if (size > int.MaxValue)
                throw new GflRuntimeException($"the ONNX model would be {size / 1048576} MB: protobuf files end at 2 GB");
            var buffer = new byte[size];
            var output = new CodedOutputStream(buffer);
            body(new Writer(output));
            output.CheckNoSpaceLeft();
            return buffer;
        }

        void Tag(int field, WireFormat.WireType type)
        {
            if (_out is null) _size += CodedOutputStream.ComputeTagSize(field);
            else _out.WriteTag(field, type);
        }

        public void Int64(int field, long value)
        {
            Tag(field, WireFormat.WireType.Varint);
            if (_out is null) _size += CodedOutputStream.ComputeInt64Size(value);
            else _out.WriteInt64(value);
        }

        public void Float(int field, float value)
        {
            Tag(field, WireFormat.WireType.Fixed32);
            if (_out is null) _size += 4;
            else _out.WriteFloat(value);
        }

        /// <summary>An empty or null string is the field's default and is not written.</summary>
        public void String(int field, string? value)
        {
            if (string.IsNullOrEmpty(value)) return;
            Tag(field, WireFormat.WireType.LengthDelimited);
            if (_out is null) _size += CodedOutputStream.ComputeStringSize(value);
            else _out.WriteString(value);
        }

        public void Bytes(int field, byte[] value)
        {
            Tag(field, WireFormat.WireType.LengthDelimited);
            if (_out is null) _size += CodedOutputStream.ComputeLengthSize(value.Length) + value.Length;
            else _out.WriteBytes(UnsafeByteOperations.UnsafeWrap(value));
        }

        public void Message(int field, Action<Writer> body)
        {
            long size = Measure(body);
            Tag(field, WireFormat.WireType.LengthDelimited);
            if (_out is null) _size += CodedOutputStream.ComputeLengthSize((int)size) + size;
            else
            {
                _out.WriteLength((int)size);
                body(this);
            }
        }
    }

    /// <summary>TensorProto: dims (1), data_type (2), name (8), raw_data (9, little-endian).</summary>
    public sealed record Tensor(string Name, DataType Type, long[] Dims, byte[] RawData)
    {
        public void Write(Writer w)
        {
            foreach (var d in Dims) w.Int64(1, d);
            w.Int64(2, (int)Type);
            w.String(8, Name);
            w.Bytes(9, RawData);
        }
    }

    /// <summary>AttributeProto: name (1), f (2), i (3), s (4), t (5), floats (7), ints (8), type (20).</summary>
    public sealed record Attribute(string Name, long? Int = null, float? Float = null, string? Str = null, long[]? Ints = null,
        float[]? Floats = null, Tensor? Value = null)
    {
        public void Write(Writer w)
        {
            w.String(1, Name);
            int type;
            if (Float is { } f) { w.Float(2, f); type = 1; }
            else if (Int is { } i) { w.Int64(3, i); type = 2; }
            else if (Str is not null) { w.Bytes(4, System.Text.Encoding.UTF8.GetBytes(Str)); type = 3; }
            else if (Value is not null) { w.Message(5, Value.Write); type = 4; }
            else if (Floats is not null) { foreach (var x in Floats) w.Float(7, x); type = 6; }
            else if (Ints is not null) { foreach (var x in Ints) w.Int64(8, x); type = 7; }
            else throw new ArgumentException($"attribute {Name} has no value");
            w.Int64(20, type);
        }
    }

    /// <summary>NodeProto: input (1), output (2), name (3), op_type (4), attribute (5), domain (7).</summary>
    public sealed record Node(string OpType, IReadOnlyList<string> Inputs, IReadOnlyList<string> Outputs, string Name,
        IReadOnlyList<Attribute> Attributes)
    {
        public void Write(Writer w)
        {
            // Inputs and outputs are positional: an empty name (an omitted optional input) is written too.
            foreach (var i in Inputs) w.Bytes(1, System.Text.Encoding.UTF8.GetBytes(i));
            foreach (var x in Outputs) w.Bytes(2, System.Text.Encoding.UTF8.GetBytes(x));
            w.String(3, Name);
            w.String(4, OpType);
            foreach (var a in Attributes) w.Message(5, a.Write);
        }
    }

    /// <summary>ValueInfoProto (name 1, type 2) of a tensor: TypeProto.tensor_type (1) = {elem_type 1, shape 2}; each
    /// TensorShapeProto.dim (1) is a dim_value (1) or a named dim_param (2).</summary>
    public sealed record ValueInfo(string Name, DataType Type, IReadOnlyList<object> Shape)
    {
        public void Write(Writer w)
        {
            w.String(1, Name);
            w.Message(2, type => type.Message(1, tensor =>
            {
                tensor.Int64(1, (int)Type);
                tensor.Message(2, shape =>
                {
                    foreach (var d in Shape)
                        shape.Message(1, dim =>
                        {
                            if (d is string param) dim.String(2, param);
                            else dim.Int64(1, Convert.ToInt64(d));
                        });
                });
            }));
        }
    }

    /// <summary>GraphProto: node (1), name (2), initializer (5), input (11), output (12).</summary>
    public sealed record Graph(string Name, IReadOnlyList<Node> Nodes, IReadOnlyList<Tensor> Initializers,
        IReadOnlyList<ValueInfo> Inputs, IReadOnlyList<ValueInfo> Outputs)
    {
        public void Write(Writer w)
        {
            foreach (var n in Nodes) w.Message(1, n.Write);
            w.String(2, Name);
            foreach (var t in Initializers) w.Message(5, t.Write);
            foreach (var i in Inputs) w.Message(11, i.Write);
            foreach (var x in Outputs) w.Message(12, x.Write);
        }
    }

    /// <summary>ModelProto: ir_version (1), producer_name (2), producer_version (3), doc_string (6), graph (7),
    /// opset_import (8: OperatorSetIdProto domain 1, version 2), metadata_props (14: StringStringEntryProto key 1, value 2).</summary>
    public sealed record Model(Graph Graph, long IrVersion, long Opset, string ProducerVersion, string Doc,
        IReadOnlyList<KeyValuePair<string, string>> Metadata)
    {
        public byte[] Encode() => Writer.Encode(w =>
        {
            w.Int64(1, IrVersion);
            w.String(2, "gfl");
            w.String(3, ProducerVersion);
            w.String(6, Doc);
            w.Message(7, Graph.Write);
            w.Message(8, s => s.Int64(2, Opset));   // default domain "" (ai.onnx)
            foreach (var (k, v) in Metadata) w.Message(14, e => { e.String(1, k); e.String(2, v); });
        });
    }
}
