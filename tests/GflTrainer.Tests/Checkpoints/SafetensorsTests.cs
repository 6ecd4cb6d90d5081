using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using GflTrainer.Checkpoints;
using GflTrainer.Tests.Model;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Checkpoints;

public sealed class SafetensorsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("gfl-safetensors-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void WriteThenRead_RoundTripsEveryDtypeShapeAndMetadata()
    {
        using var scope = NewDisposeScope();
        var tensors = new Dictionary<string, Tensor>
        {
            ["f32"] = randn(3, 4),
            ["f16"] = randn(5).to_type(ScalarType.Float16),
            ["bf16"] = randn(2, 2).to_type(ScalarType.BFloat16),
            ["i64"] = tensor(new long[] { long.MinValue, -1, 0, long.MaxValue }),
            ["i32"] = tensor(new[] { int.MinValue, 7 }),
            ["u8"] = tensor(new byte[] { 0, 255 }),
            ["bool"] = tensor(new[] { true, false, true }),
            ["scalar"] = tensor(1.5f),
            ["empty"] = zeros(0, 3),
            ["strided"] = arange(12, dtype: ScalarType.Float32).reshape(3, 4).t(), // non-contiguous view
        };
        var path = Path.Combine(_dir, "all.safetensors");
        Safetensors.Write(path, tensors, new Dictionary<string, string> { ["format"] = "pt", ["note"] = "é" });

        using var back = Safetensors.Read(path);
        Assert.Equal(tensors.Keys.Order(), back.Tensors.Keys.Order());
        foreach (var (name, expected) in tensors)
        {
            var actual = back.Tensors[name];
            Assert.Equal(expected.dtype, actual.dtype);
            Assert.Equal(expected.shape, actual.shape);
            Assert.True(expected.IsIdenticalTo(actual), name);
        }
        Assert.Equal("é", back.Metadata["note"]);
        Assert.Equal("pt", back.Metadata["format"]);
        Assert.False(File.Exists(path + ".tmp"));
        Assert.Single(Directory.GetFiles(_dir));
    }

    [Fact]
    public void Write_ProducesTheReferenceLayout()
    {
        using var scope = NewDisposeScope();
        var path = Path.Combine(_dir, "layout.safetensors");
        Safetensors.Write(path, new Dictionary<string, Tensor> { ["b"] = tensor(new[] { 1f, 2f }), ["a"] = tensor(new short[] { 3 }) });
        var bytes = File.ReadAllBytes(path);
        long headerLength = BinaryPrimitives.ReadInt64LittleEndian(bytes);
        Assert.Equal(0, headerLength % 8); // data section 8-byte aligned
        using var header = JsonDocument.Parse(Encoding.UTF8.GetString(bytes, 8, (int)headerLength));
        var a = header.RootElement.GetProperty("a");
        Assert.Equal("I16", a.GetProperty("dtype").GetString());
        Assert.Equal(new long[] { 0, 2 }, a.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()));
        var b = header.RootElement.GetProperty("b");
        Assert.Equal(new long[] { 2, 10 }, b.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()));
        Assert.Equal(8 + headerLength + 10, bytes.Length);
        Assert.Equal(2f, BitConverter.ToSingle(bytes, (int)(8 + headerLength + 6)));
    }

    [Fact]
    public void Read_PythonWrittenFixture_GivesTorchvisionTensors()
    {
        using var content = Safetensors.Read(TestPaths.Fixtures("Model", "resnet18_w16.safetensors"));
        Assert.Equal(new long[] { 16, 3, 7, 7 }, content.Tensors["conv1.weight"].shape);
        Assert.Equal(ScalarType.Int64, content.Tensors["bn1.num_batches_tracked"].dtype);
        Assert.Equal("18", content.Metadata["depth"]);
    }

    [Fact]
    public void Read_TruncatedFile_ThrowsRuntimeErrorNamingTheTensor()
    {
        using var scope = NewDisposeScope();
        var path = Path.Combine(_dir, "cut.safetensors");
        Safetensors.Write(path, new Dictionary<string, Tensor> { ["w"] = randn(100) });
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..^4]);
        var e = Assert.Throws<CheckpointException>(() => Safetensors.Read(path));
        Assert.Contains("'w'", e.Message);
        Assert.Equal("w", e.Tensor);
        Assert.Equal(path, e.Path);
    }

    [Fact]
    public void Read_NotSafetensors_ThrowsRuntimeError()
    {
        var path = Path.Combine(_dir, "text.safetensors");
        File.WriteAllText(path, "this is not a safetensors file at all");
        Assert.Equal(path, Assert.Throws<CheckpointException>(() => Safetensors.Read(path)).Path);
        var absent = Path.Combine(_dir, "absent.safetensors");
        Assert.Equal($"{absent}: weights file not found", Assert.Throws<CheckpointException>(() => Safetensors.Read(absent)).Message);
    }
}
