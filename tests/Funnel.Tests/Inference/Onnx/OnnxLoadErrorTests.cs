using System.Text.Json.Nodes;
using Funnel.Inference;
using Funnel.Tests.Cli;

namespace Funnel.Tests.Inference.Onnx;

/// <summary>
/// Graphs that cannot be mapped with certainty are refused at load, naming the file and the node or tensor
/// and what was expected; never a silently wrong model.
/// </summary>
public sealed class OnnxLoadErrorTests : IDisposable
{
    private readonly OnnxFixtures _fixtures = new();

    [Theory]
    [InlineData("nan-weight", "tensor 'encoder.layer.0.output.LayerNorm.weight' (initializer 'encoder.layer.0.output.LayerNorm.weight') holds NaN at element 3")]
    [InlineData("inf-weight", "tensor 'encoder.layer.0.intermediate.dense.weight' (initializer 'onnx::MatMul_")]
    [InlineData("inf-weight", "of node '/encoder/layer.0/intermediate/dense/MatMul' (MatMul)) holds +Infinity at element 17")]
    [InlineData("bias-shape", "node '/encoder/layer.0/intermediate/dense/MatMul' (MatMul): weight 'onnx::MatMul_")]
    [InlineData("bias-shape", "has 16 outputs, but bias 'encoder.layer.0.intermediate.dense.bias' [15] has 15 values")]
    [InlineData("wrong-shape", "tensor 'embeddings.position_embeddings.weight' (initializer 'embeddings.position_embeddings.weight') has shape [7, 8], expected [8, 8]")]
    [InlineData("name-disagrees", "node '/encoder/layer.0/attention/self/query/MatMul_1' (MatMul): its weight 'onnx::MatMul_")]
    [InlineData("name-disagrees", "gets different names: 'encoder.layer.0.attention.self.key.weight' from bias 'encoder.layer.0.attention.self.key.bias', 'encoder.layer.0.attention.self.query.weight' from its node path")]
    [InlineData("two-candidates", "two candidates for 'encoder.layer.0.attention.self.query.weight': initializer '")]
    [InlineData("unnamed-matmul", "node 'MatMul_35' (MatMul) multiplies by the constant '195' [8, 8], but nothing names it")]
    [InlineData("tanh-gelu", "expected 1 Erf nodes (the exact GELU of each layer, as config.json's hidden_act \"gelu\" says) and at most one Tanh (the pooler), found 0 Erf and 2 Tanh; its 2 Tanh nodes suggest the tanh approximation of GELU")]
    [InlineData("fused-ort", "node 'EmbedLayerNormalization_0' (com.microsoft.EmbedLayerNormalization) is an ONNX Runtime fused operator")]
    [InlineData("fused-ort", "export the model without graph optimization")]
    [InlineData("gpt2-like", "not the BERT graph config.json describes: no tensor for 'embeddings.word_embeddings.weight', 'embeddings.position_embeddings.weight'")]
    [InlineData("gpt2-like", "the graph's weights are 'h.0.attn.c_attn.bias', 'h.0.attn.c_attn.weight'")]
    public void BrokenGraphsAreRefusedNamingTheNodeOrTensor(string fixture, string expected)
    {
        string dir = _fixtures.BadFolder(fixture);
        var ex = Assert.Throws<ModelFormatException>(() => SentenceEncoder.Load(dir));
        Assert.Contains(Path.Combine(dir, "model.onnx"), ex.Message);
        Assert.Contains(expected, ex.Message);
    }

    [Fact]
    public void CorruptedBytesLoadOrFailWithAModelFormatExceptionNeverAnotherException()
    {
        // One byte changed at a time, at 400 seeded positions: a varint, a length, a name, a type, a dim or a value.
        string dir = _fixtures.BadFolder("micro");
        string model = Path.Combine(dir, "model.onnx");
        byte[] original = File.ReadAllBytes(model);
        var random = new Random(12345);
        int refused = 0;
        for (int i = 0; i < 400; i++)
        {
            byte[] bytes = (byte[])original.Clone();
            int at = random.Next(bytes.Length);
            bytes[at] ^= (byte)random.Next(1, 256);
            File.WriteAllBytes(model, bytes);
            try
            {
                SentenceEncoder.Load(dir).Dispose();
            }
            catch (ModelFormatException ex)
            {
                Assert.Contains(model, ex.Message);
                refused++;
            }
            catch (Exception ex)
            {
                Assert.Fail($"byte {at} changed to {bytes[at]:x2}: {ex.GetType().Name}: {ex.Message}");
            }
        }
        Assert.InRange(refused, 20, 400); // most changes hit raw weight bytes, which load as other weights
    }

    [Fact]
    public void TheValidMicroModelLoads()
    {
        // The broken fixtures differ from this one by one defect each, so each refusal is about that defect.
        using SentenceEncoder encoder = SentenceEncoder.Load(_fixtures.BadFolder("micro"));
        Assert.Equal(8, encoder.Dimension);
    }

    [Fact]
    public void ExternalDataOutsideTheModelFolderIsRefused()
    {
        string dir = _fixtures.Folder("bi", Path.Combine(OnnxFixtures.Root, "bad", "external-escapes.onnx"), "model.onnx", null);
        File.Copy(Path.Combine(OnnxFixtures.Root, "models", "bi-op14-external.onnx_data"), Path.Combine(Path.GetDirectoryName(dir)!, "bi-op14-external.onnx_data"));
        var ex = Assert.Throws<ModelFormatException>(() => SentenceEncoder.Load(dir));
        Assert.Contains("has external data at \"../bi-op14-external.onnx_data\", outside the model's folder", ex.Message);
    }

    [Theory]
    [InlineData("num_hidden_layers", 3, "no tensor for 'encoder.layer.2.attention.self.query.weight'")]
    [InlineData("num_hidden_layers", 1, "initializer '")]
    [InlineData("num_hidden_layers", 1, "('encoder.layer.1.attention.self.query.weight' [32, 32]) is not a weight of the BertModel config.json describes (1 layers, hidden size 32)")]
    [InlineData("num_attention_heads", 8, "splits 'encoder.layer.0.attention.self.query.weight' into 4 heads of 8; config.json says num_attention_heads 8 (head size 4)")]
    [InlineData("intermediate_size", 128, "has shape [64, 32], expected [128, 32] (config.json)")]
    [InlineData("vocab_size", 30522, "tensor 'embeddings.word_embeddings.weight' (initializer 'embeddings.word_embeddings.weight') has shape [512, 32], expected [30522, 32]")]
    public void AConfigThatDoesNotDescribeTheGraphIsRefused(string field, int value, string expected)
    {
        string dir = _fixtures.Folder(OnnxFixtures.Get("bi-op14"));
        EditConfig(dir, c => c[field] = value);
        var ex = Assert.Throws<ModelFormatException>(() => SentenceEncoder.Load(dir));
        Assert.Contains(expected, ex.Message);
    }

    [Fact]
    public void ACrossEncoderExportUnderABiEncoderConfigIsRefused()
    {
        string dir = _fixtures.Folder("bi", Path.Combine(OnnxFixtures.Root, "models", "ce-op14.onnx"), "model.onnx", null);
        var ex = Assert.Throws<ModelFormatException>(() => SentenceEncoder.Load(dir));
        Assert.Contains("('classifier.weight' [1, 32]) is not a weight of the BertModel", ex.Message);
    }

    [Fact]
    public void ABiEncoderExportCannotServeAsACrossEncoder()
    {
        // A bi-encoder export has no classifier.
        string dir = _fixtures.Folder("ce", Path.Combine(OnnxFixtures.Root, "bad", "micro.onnx"), "model.onnx", null);
        EditConfig(dir, c =>
        {
            foreach (var (key, value) in JsonNode.Parse(File.ReadAllText(Path.Combine(OnnxFixtures.Root, "bad", "config.json")))!.AsObject())
                if (key != "architectures") c[key] = value?.DeepClone();
        });
        var ex = Assert.Throws<ModelFormatException>(() => CrossEncoder.Load(dir));
        Assert.Contains("missing tensor 'classifier.weight'", ex.Message);
    }

    [Fact]
    public void AFolderWithoutWeightsListsEveryFileItLookedFor()
    {
        string dir = _fixtures.Folder(OnnxFixtures.Get("bi-op14"));
        File.Delete(Path.Combine(dir, "model.onnx"));
        var ex = Assert.Throws<ModelFormatException>(() => SentenceEncoder.Load(dir));
        Assert.Contains("no weights: expected model.safetensors, model.safetensors.index.json, model.onnx or onnx/model.onnx", ex.Message);
    }

    [Theory]
    [InlineData("fused-ort", "com.microsoft")]
    [InlineData("gpt2-like", "embeddings.word_embeddings.weight")]
    [InlineData("nan-weight", "holds NaN")]
    [InlineData("two-candidates", "two candidates")]
    public void TheCliMapsRefusedModelsToExitCode2(string fixture, string expected)
    {
        var (code, _, stderr) = CliRun.Run("embed", "--model", _fixtures.BadFolder(fixture), "hi");
        Assert.Equal(2, code);
        Assert.Contains(expected, stderr);
        Assert.DoesNotContain("   at ", stderr);
    }

    [Fact]
    public void TheCliMapsATruncatedModelToExitCode2()
    {
        string dir = _fixtures.Folder(OnnxFixtures.Get("bi-op14"));
        string model = Path.Combine(dir, "model.onnx");
        File.WriteAllBytes(model, File.ReadAllBytes(model)[..5000]);
        var (code, _, stderr) = CliRun.Run("embed", "--model", dir, "hi");
        Assert.Equal(2, code);
        Assert.Contains(model + ": not a valid ONNX model", stderr);
    }

    private static void EditConfig(string dir, Action<JsonObject> edit)
    {
        string path = Path.Combine(dir, "config.json");
        var config = (JsonObject)JsonNode.Parse(File.ReadAllText(path))!;
        edit(config);
        File.WriteAllText(path, config.ToJsonString());
    }

    public void Dispose() => _fixtures.Dispose();
}
