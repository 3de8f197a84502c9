using System.Text.Json.Nodes;
using Funnel.Inference;

namespace Funnel.Tests.Inference;

/// <summary>Every way a model folder can be broken gets an error that names the file and what was expected.</summary>
[Collection(ReferenceCollection.Name)]
public sealed class ModelLoadErrorTests(ReferenceFixture reference)
{
    private const string Weights = "model.safetensors";

    [Fact]
    public void MissingFolder()
    {
        var ex = Assert.Throws<ModelFormatException>(() => SentenceEncoder.Load("/nonexistent/model"));
        Assert.Contains("/nonexistent/model", ex.Message);
    }

    [Fact]
    public void MissingWeights()
    {
        string dir = reference.CopyOf("small-bi");
        File.Delete(Path.Combine(dir, Weights));
        var ex = Assert.Throws<ModelFormatException>(() => SentenceEncoder.Load(dir));
        Assert.Contains("expected model.safetensors, model.safetensors.index.json, model.onnx or onnx/model.onnx", ex.Message);
    }

    [Theory]
    [InlineData(float.NaN, "holds NaN at element 7")]
    [InlineData(float.PositiveInfinity, "holds +Infinity at element 7")]
    [InlineData(float.NegativeInfinity, "holds -Infinity at element 7")]
    public void NonFiniteWeightsAreRefusedNamingTheTensor(float value, string expected)
    {
        string dir = reference.CopyOf("small-bi");
        SafeTensorsEditing.AddToElement(Path.Combine(dir, Weights), "encoder.layer.1.attention.self.key.weight", 7, value);
        var ex = Assert.Throws<ModelFormatException>(() => SentenceEncoder.Load(dir));
        Assert.Contains($"{Path.Combine(dir, Weights)}: tensor 'encoder.layer.1.attention.self.key.weight' {expected}", ex.Message);
    }

    [Fact]
    public void NonFiniteF16WeightsAreRefused()
    {
        string dir = reference.CopyOf("small-bi-f16");
        string path = Path.Combine(dir, Weights);
        long offset;
        using (var file = Funnel.Inference.Weights.SafeTensorsFile.Open(path)) offset = file.Tensors["embeddings.LayerNorm.bias"].Offset;
        using (var stream = new FileStream(path, FileMode.Open, FileAccess.Write))
        {
            stream.Position = offset + 2 * 5;
            stream.Write(BitConverter.GetBytes(BitConverter.HalfToUInt16Bits(Half.NaN)));
        }
        var ex = Assert.Throws<ModelFormatException>(() => SentenceEncoder.Load(dir));
        Assert.Contains("tensor 'embeddings.LayerNorm.bias' holds NaN at element 5", ex.Message);
    }

    [Fact]
    public void MissingConfig()
    {
        string dir = reference.CopyOf("small-bi");
        File.Delete(Path.Combine(dir, "config.json"));
        Assert.Contains("config.json", Assert.Throws<ModelFormatException>(() => SentenceEncoder.Load(dir)).Message);
    }

    [Fact]
    public void MissingShard()
    {
        string dir = reference.CopyOf("small-bi-sharded");
        File.Delete(Path.Combine(dir, "model-00002-of-00002.safetensors"));
        var ex = Assert.Throws<ModelFormatException>(() => SentenceEncoder.Load(dir));
        Assert.Contains("model-00002-of-00002.safetensors", ex.Message);
    }

    [Fact]
    public void MissingTensor()
    {
        string dir = reference.CopyOf("small-bi");
        SafeTensorsEditing.EditHeader(Path.Combine(dir, Weights), h => RenameKey(h, "encoder.layer.1.intermediate.dense.bias", "encoder.layer.1.intermediate.dense.bias_renamed"));
        var ex = Assert.Throws<ModelFormatException>(() => SentenceEncoder.Load(dir));
        Assert.Contains("missing tensor 'encoder.layer.1.intermediate.dense.bias'", ex.Message);
    }

    [Fact]
    public void WrongShape()
    {
        string dir = reference.CopyOf("small-bi");
        // Same byte count, transposed: only the shape check can catch it.
        SafeTensorsEditing.EditHeader(Path.Combine(dir, Weights), h => h["encoder.layer.0.intermediate.dense.weight"]!["shape"] = new JsonArray(32, 64));
        var ex = Assert.Throws<ModelFormatException>(() => SentenceEncoder.Load(dir));
        Assert.Contains("'encoder.layer.0.intermediate.dense.weight' has shape [32, 64], expected [64, 32]", ex.Message);
    }

    [Fact]
    public void UnsupportedDType()
    {
        string dir = reference.CopyOf("small-bi");
        SafeTensorsEditing.EditHeader(Path.Combine(dir, Weights), h => h["embeddings.LayerNorm.bias"]!["dtype"] = "I32");
        var ex = Assert.Throws<ModelFormatException>(() => SentenceEncoder.Load(dir));
        Assert.Contains("'embeddings.LayerNorm.bias' has unsupported dtype I32", ex.Message);
    }

    [Fact]
    public void InconsistentDataOffsets()
    {
        string dir = reference.CopyOf("small-bi");
        SafeTensorsEditing.EditHeader(Path.Combine(dir, Weights), h => h["embeddings.LayerNorm.bias"]!["data_offsets"] = new JsonArray(0, 8));
        var ex = Assert.Throws<ModelFormatException>(() => SentenceEncoder.Load(dir));
        Assert.Contains("'embeddings.LayerNorm.bias' F32 [32] needs 128 bytes", ex.Message);
    }

    [Theory]
    [InlineData(new byte[] { 1, 2, 3 }, "8-byte header length")]
    [InlineData(new byte[] { 0xFF, 0xFF, 0xFF, 0x7F, 0, 0, 0, 0, (byte)'{', (byte)'}' }, "exceeds the file")]
    [InlineData(new byte[] { 4, 0, 0, 0, 0, 0, 0, 0, (byte)'{', (byte)'"', (byte)'a', (byte)'"' }, "corrupt safetensors header")]
    [InlineData(new byte[] { 2, 0, 0, 0, 0, 0, 0, 0, (byte)'[', (byte)']' }, "expected a JSON object")]
    public void CorruptHeader(byte[] bytes, string expected)
    {
        string dir = reference.CopyOf("small-bi");
        File.WriteAllBytes(Path.Combine(dir, Weights), bytes);
        var ex = Assert.Throws<ModelFormatException>(() => SentenceEncoder.Load(dir));
        Assert.Contains(expected, ex.Message);
        Assert.Contains(Weights, ex.Message);
    }

    [Theory]
    [InlineData("model_type", "\"roberta\"", "unsupported model_type \"roberta\"")]
    [InlineData("architectures", "[\"BertForMaskedLM\"]", "unsupported architecture \"BertForMaskedLM\"")]
    [InlineData("hidden_act", "\"relu\"", "unsupported hidden_act \"relu\"")]
    [InlineData("hidden_size", "\"big\"", "field \"hidden_size\" must be a positive integer")]
    public void UnsupportedConfig(string field, string json, string expected)
    {
        string dir = reference.CopyOf("small-bi");
        string path = Path.Combine(dir, "config.json");
        var config = (JsonObject)JsonNode.Parse(File.ReadAllText(path))!;
        config[field] = JsonNode.Parse(json);
        File.WriteAllText(path, config.ToJsonString());
        var ex = Assert.Throws<ModelFormatException>(() => SentenceEncoder.Load(dir));
        Assert.Contains(expected, ex.Message);
        Assert.Contains("config.json", ex.Message);
    }

    [Theory]
    [InlineData("{\"pooling_mode_weightedmean_tokens\": true}", "unsupported pooling \"pooling_mode_weightedmean_tokens\"")]
    [InlineData("{\"pooling_mode_mean_tokens\": false}", "no pooling mode is enabled")]
    [InlineData("{\"pooling_mode_mean_tokens\": true, \"include_prompt\": false}", "include_prompt false")]
    public void UnsupportedPooling(string json, string expected)
    {
        string dir = reference.CopyOf("small-bi");
        File.WriteAllText(Path.Combine(dir, "1_Pooling", "config.json"), json);
        var ex = Assert.Throws<ModelFormatException>(() => SentenceEncoder.Load(dir));
        Assert.Contains(expected, ex.Message);
        Assert.Contains(Path.Combine("1_Pooling", "config.json"), ex.Message);
    }

    [Fact]
    public void UnsupportedModule()
    {
        string dir = reference.CopyOf("small-bi");
        File.WriteAllText(Path.Combine(dir, "modules.json"), """[{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}, {"idx": 1, "name": "1", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}]""");
        var ex = Assert.Throws<ModelFormatException>(() => SentenceEncoder.Load(dir));
        Assert.Contains("unsupported module \"sentence_transformers.models.Dense\"", ex.Message);
    }

    [Fact]
    public void CrossEncoderNeedsAClassificationHead()
    {
        var ex = Assert.Throws<ModelFormatException>(() => CrossEncoder.Load(reference.Get("small-bi").Dir));
        Assert.Contains("BertForSequenceClassification", ex.Message);
    }

    [Fact]
    public void AcceptsTensorNamesWithTheBertPrefix()
    {
        // The cross-encoder checkpoint names its encoder 'bert.*'; a bi-encoder load must find them. (Declared a BertModel:
        // a folder that says it is a cross-encoder is refused as a bi-encoder, see the next test.)
        string dir = reference.CopyOf("small-ce");
        string path = Path.Combine(dir, "config.json");
        var config = (JsonObject)JsonNode.Parse(File.ReadAllText(path))!;
        config["architectures"] = new JsonArray("BertModel");
        File.WriteAllText(path, config.ToJsonString());
        using SentenceEncoder encoder = SentenceEncoder.Load(dir);
        Assert.Equal(32, encoder.Dimension);
    }

    [Fact]
    public void Defect9_ACrossEncoderFolderIsRefusedAsABiEncoder()
    {
        var ex = Assert.Throws<ModelFormatException>(() => SentenceEncoder.Load(reference.Get("small-ce").Dir));
        Assert.Contains("is a cross-encoder (config.json architectures: BertForSequenceClassification, no modules.json)", ex.Message);
    }

    [Fact]
    public void ConfiguredSigmoidAndOverride()
    {
        string dir = reference.CopyOf("small-ce");
        string path = Path.Combine(dir, "config.json");
        var config = (JsonObject)JsonNode.Parse(File.ReadAllText(path))!;
        config["sbert_ce_default_activation_function"] = "torch.nn.modules.activation.Sigmoid";
        File.WriteAllText(path, config.ToJsonString());
        using CrossEncoder sigmoid = CrossEncoder.Load(dir);
        using CrossEncoder raw = CrossEncoder.Load(dir, new EncoderOptions { Activation = ScoreActivation.Identity });
        Assert.Equal(ScoreActivation.Sigmoid, sigmoid.Activation);
        float logit = raw.Score("q", ["a document"])[0];
        Assert.Equal(1 / (1 + Math.Exp(-logit)), sigmoid.Score("q", ["a document"])[0], 6);
    }

    [Fact]
    public void AConfigWithoutActivationGetsSentenceTransformersOneLabelDefaultSigmoid()
    {
        string dir = reference.CopyOf("small-ce");
        string path = Path.Combine(dir, "config.json");
        var config = (JsonObject)JsonNode.Parse(File.ReadAllText(path))!;
        config.Remove("sbert_ce_default_activation_function");
        config.Remove("sentence_transformers");
        File.WriteAllText(path, config.ToJsonString());
        using CrossEncoder unnamed = CrossEncoder.Load(dir);
        Assert.Equal(ScoreActivation.Sigmoid, unnamed.Activation);

        config["sentence_transformers"] = new JsonObject { ["activation_fn"] = "torch.nn.modules.linear.Identity" };
        File.WriteAllText(path, config.ToJsonString());
        using CrossEncoder identity = CrossEncoder.Load(dir);
        Assert.Equal(ScoreActivation.Identity, identity.Activation);
    }

    private static void RenameKey(JsonObject o, string from, string to)
    {
        JsonNode? v = o[from];
        o.Remove(from);
        o[to] = v;
    }
}
