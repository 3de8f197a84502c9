using System.Text.Json;
using Funnel.Inference;
using Funnel.Inference.Weights.Onnx;

namespace Funnel.Tests.Inference.Onnx;

/// <summary>The ONNX protobuf reader: every tensor encoding, and malformed files refused with the file and offset named.</summary>
public sealed class OnnxReaderTests : IDisposable
{
    private readonly string _temp = Directory.CreateTempSubdirectory("funnel-onnx-reader-").FullName;

    [Fact]
    public void ReadsEveryTensorEncodingAsPythonWroteIt()
    {
        // encodings.onnx holds each type twice, as raw_data and in the typed fields (written by python3-onnx).
        using var expected = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(OnnxFixtures.Root, "encodings.json")));
        using OnnxModel model = OnnxModel.Open(Path.Combine(OnnxFixtures.Root, "encodings.onnx"));
        Assert.Equal(expected.RootElement.EnumerateObject().Select(p => p.Name), model.Graph.Initializers.Select(t => t.Name));
        foreach (OnnxTensor t in model.Graph.Initializers)
        {
            JsonElement e = expected.RootElement.GetProperty(t.Name);
            Assert.Equal(e.GetProperty("dims").Deserialize<long[]>(), t.Dims);
            double[] values = e.GetProperty("values").Deserialize<double[]>()!;
            if (t.DataType == OnnxDataType.Int64)
            {
                Assert.Equal(values.Select(v => (long)v), model.ReadInt64(t));
                continue;
            }
            float[] actual = new float[t.ElementCount];
            model.ReadFloat32(t, actual);
            Assert.Equal(values.Select(v => (float)v), actual);
        }
        Assert.Contains(model.Graph.Initializers, t => t.RawOffset >= 0);
        Assert.Contains(model.Graph.Initializers, t => t.RawOffset < 0);
        Assert.Equal(13, Assert.Single(model.Proto.Opsets).Version);
    }

    [Fact]
    public void ReadsModelHeaderAndGraph()
    {
        using OnnxModel model = OnnxModel.Open(Path.Combine(OnnxFixtures.Root, "models", "bi-op13-legacy.onnx"));
        Assert.True(model.Proto.IrVersion >= 7);
        Assert.StartsWith("pytorch", model.Proto.Producer);
        Assert.Equal(13, Assert.Single(model.Proto.Opsets, o => o.Domain == "").Version);
        Assert.Equal(["input_ids", "attention_mask", "token_type_ids"], model.Graph.Inputs);
        Assert.Equal("last_hidden_state", model.Graph.Outputs[0]);
        OnnxNode first = model.Graph.Nodes.First(n => n.OpType == "MatMul");
        Assert.Equal("MatMul_35", first.Name);
        Assert.Equal([32L, 32L], model.Graph.Initializers.Single(t => t.Name == first.Inputs[1]).Dims);
        Assert.Contains(model.Graph.Nodes, n => n.OpType == "Softmax" && n.Int("axis", 0) == -1);
        Assert.Contains(model.Graph.Nodes, n => n.OpType == "Constant" && n.Attribute("value")?.Tensor?.DataType == OnnxDataType.Float);
    }

    [Fact]
    public void EveryTruncationIsRefusedNamingTheFile()
    {
        byte[] bytes = File.ReadAllBytes(Path.Combine(OnnxFixtures.Root, "bad", "micro.onnx"));
        string path = Path.Combine(_temp, "model.onnx");
        for (int length = 1; length < bytes.Length; length += length < 64 ? 1 : 97)
        {
            File.WriteAllBytes(path, bytes[..length]);
            var ex = Assert.Throws<ModelFormatException>(() => OnnxModel.Open(path).Dispose());
            Assert.Contains(path, ex.Message);
        }
    }

    [Theory]
    [InlineData(new byte[] { }, "empty file")]
    [InlineData(new byte[] { 0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F }, "varint overflows 64 bits")]
    [InlineData(new byte[] { 0x08, 0x80 }, "truncated varint")]
    [InlineData(new byte[] { 0x08, 0x07, 0x3A, 0x7F, 0x0A }, "ModelProto field 7 at byte 3: length 127 runs past the end")]
    [InlineData(new byte[] { 0x08, 0x07, 0x3A, 0x02, 0x0A, 0x05 }, "GraphProto field 1 at byte 5: length 5 runs past the end")]
    [InlineData(new byte[] { 0x08, 0x07, 0x3A, 0x04, 0x0A, 0x02, 0x0A, 0x05 }, "NodeProto field 1 at byte 7: length 5 runs past the end")]
    [InlineData(new byte[] { 0x08, 0x07, 0x3A, 0x00 }, "no opset_import for the default domain")]
    [InlineData(new byte[] { 0x0B }, "wire type 3")]
    [InlineData(new byte[] { 0x00 }, "invalid field number 0")]
    [InlineData(new byte[] { 0x3D, 0, 0, 0, 0 }, "field 7 has wire type Fixed32, expected LengthDelimited")]
    [InlineData(new byte[] { 0x08, 0x07 }, "no graph")]
    [InlineData(new byte[] { 0x3A, 0x00 }, "no ir_version")]
    public void MalformedProtobufIsRefusedWithTheOffset(byte[] bytes, string expected)
    {
        string path = Path.Combine(_temp, "model.onnx");
        File.WriteAllBytes(path, bytes);
        var ex = Assert.Throws<ModelFormatException>(() => OnnxModel.Open(path).Dispose());
        Assert.Contains(expected, ex.Message);
        Assert.Contains(path, ex.Message);
    }

    [Theory]
    [InlineData("{\"model_type\": \"bert\"}")]
    [InlineData("version https://git-lfs.github.com/spec/v1\noid sha256:4b7c…\nsize 90893304\n")]
    public void TextFilesAreNotOnnx(string text)
    {
        string path = Path.Combine(_temp, "model.onnx");
        File.WriteAllText(path, text);
        var ex = Assert.Throws<ModelFormatException>(() => OnnxModel.Open(path).Dispose());
        Assert.Contains("not a valid ONNX model", ex.Message);
    }

    [Fact]
    public void ASafetensorsFileIsNotOnnx()
    {
        string path = Path.Combine(_temp, "model.onnx");
        File.WriteAllBytes(path, [0x58, 0x02, 0, 0, 0, 0, 0, 0, .. "{\"__metadata__\":{}}"u8]);
        Assert.Contains("not a valid ONNX model", Assert.Throws<ModelFormatException>(() => OnnxModel.Open(path).Dispose()).Message);
    }

    [Fact]
    public void ExternalDataPastTheEndOfItsFileIsRefused()
    {
        string dir = Path.Combine(_temp, "ext");
        Directory.CreateDirectory(dir);
        File.Copy(Path.Combine(OnnxFixtures.Root, "models", "bi-op14-external.onnx"), Path.Combine(dir, "model.onnx"));
        byte[] data = File.ReadAllBytes(Path.Combine(OnnxFixtures.Root, "models", "bi-op14-external.onnx_data"));
        File.WriteAllBytes(Path.Combine(dir, "bi-op14-external.onnx_data"), data[..^100]);
        var ex = Assert.Throws<ModelFormatException>(() => OnnxModel.Open(Path.Combine(dir, "model.onnx")).Dispose());
        Assert.Contains("past the end of", ex.Message);
        Assert.Contains("bi-op14-external.onnx_data", ex.Message);
    }

    [Fact]
    public void MissingExternalDataFileIsNamed()
    {
        string dir = Path.Combine(_temp, "ext-missing");
        Directory.CreateDirectory(dir);
        File.Copy(Path.Combine(OnnxFixtures.Root, "models", "bi-op14-external.onnx"), Path.Combine(dir, "model.onnx"));
        var ex = Assert.Throws<ModelFormatException>(() => OnnxModel.Open(Path.Combine(dir, "model.onnx")).Dispose());
        Assert.Contains(Path.Combine(dir, "bi-op14-external.onnx_data"), ex.Message);
        Assert.Contains("not found", ex.Message);
    }

    public void Dispose() => Directory.Delete(_temp, recursive: true);
}
