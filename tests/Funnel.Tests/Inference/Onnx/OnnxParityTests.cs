using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Funnel.Inference;
using Funnel.Inference.Weights;
using Funnel.Inference.Weights.Onnx;

namespace Funnel.Tests.Inference.Onnx;

/// <summary>
/// ONNX exports (torch.onnx, opsets 11–17, both node-name styles, with and without the bert. prefix,
/// bi- and cross-encoders, int8/uint8 dynamic quantization, float16, external data) load as the BERT
/// they export: every mapped tensor is the exported one bit for bit, and outputs match the independent
/// PyTorch reference.
/// </summary>
public sealed class OnnxParityTests : IDisposable
{
    private const float Tolerance = 1e-4f;
    private readonly OnnxFixtures _fixtures = new();

    public static TheoryData<string> Variants => new(OnnxFixtures.VariantNames);

    public static TheoryData<string> BiEncoders => new(OnnxFixtures.VariantNames.Where(n => OnnxFixtures.Get(n).Head == "bi"));

    public static TheoryData<string> CrossEncoders => new(OnnxFixtures.VariantNames.Where(n => OnnxFixtures.Get(n).Head == "ce"));

    [Theory]
    [MemberData(nameof(Variants))]
    public void EveryTensorIsTheExportedOneBitForBit(string name)
    {
        OnnxFixtures.Variant v = OnnxFixtures.Get(name);
        OnnxFixtures.Expected expected = OnnxFixtures.ExpectedOf(v);
        string dir = _fixtures.Folder(v);
        BertConfig config = BertConfig.Load(dir);
        using OnnxWeights weights = OnnxWeights.Open(Path.Combine(dir, "model.onnx"), config);
        var specs = BertTensors.Specs(config, v.Head == "ce");
        Assert.Equal(expected.Sha256.Keys.Order(), specs.Select(s => s.Name).Order());
        foreach (var (tensor, shape) in specs)
        {
            float[] values = new float[shape.Aggregate(1, (a, d) => a * d)];
            weights.Read(tensor, shape, values);
            Assert.True(expected.Sha256[tensor] == Convert.ToHexStringLower(SHA256.HashData(MemoryMarshal.AsBytes(values.AsSpan()))), $"{name}: {tensor}");
        }
    }

    [Theory]
    [MemberData(nameof(BiEncoders))]
    public void HiddenStatesMatchPyTorch(string name)
    {
        OnnxFixtures.Variant v = OnnxFixtures.Get(name);
        float[][][] expected = OnnxFixtures.ExpectedOf(v).HiddenStates!;
        using SentenceEncoder encoder = SentenceEncoder.Load(_fixtures.Folder(v));
        int[][] ids = OnnxFixtures.Ids;
        Assert.Equal(expected.Length, ids.Length);
        for (int s = 0; s < ids.Length; s++)
        {
            float[] states = encoder.HiddenStates(new TokenSequence(ids[s], new int[ids[s].Length]));
            int h = expected[s][0].Length;
            Assert.Equal(expected[s].Length * h, states.Length);
            for (int i = 0; i < states.Length; i++)
                Assert.True(Math.Abs(states[i] - expected[s][i / h][i % h]) <= Tolerance, $"{name} sequence {s} token {i / h} dim {i % h}: {states[i]} vs {expected[s][i / h][i % h]}");
        }
    }

    [Theory]
    [MemberData(nameof(CrossEncoders))]
    public void LogitsMatchPyTorch(string name)
    {
        OnnxFixtures.Variant v = OnnxFixtures.Get(name);
        float[] expected = OnnxFixtures.ExpectedOf(v).Logits!;
        using CrossEncoder encoder = CrossEncoder.Load(_fixtures.Folder(v));
        float[] actual = encoder.ScoreTokens(PairInputs());
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < actual.Length; i++) Assert.True(Math.Abs(actual[i] - expected[i]) <= Tolerance, $"{name} pair {i}: {actual[i]} vs {expected[i]}");
        Assert.True(expected.Max() - expected.Min() > 0.5f, "the logits must be spread for the comparison to mean something");
    }

    [Theory]
    [InlineData("bi-op14-int8")]
    [InlineData("bi-op13-legacy-uint8-per-channel")]
    public void QuantizedBiEncoderAgreesWithOnnxRuntimeRunningTheQuantizedGraph(string name)
    {
        // ONNX Runtime also quantizes the activations (DynamicQuantizeLinear), Funnel computes them in fp32 on the
        // dequantized weights: close, not equal. A wrong scale, zero point or axis would be far off.
        OnnxFixtures.Variant v = OnnxFixtures.Get(name);
        float[][][] ort = OnnxFixtures.ExpectedOf(v).OrtHiddenStates!;
        using SentenceEncoder encoder = SentenceEncoder.Load(_fixtures.Folder(v));
        int[][] ids = OnnxFixtures.Ids;
        for (int s = 0; s < ids.Length; s++)
        {
            float[] states = encoder.HiddenStates(new TokenSequence(ids[s], new int[ids[s].Length]));
            int h = ort[s][0].Length;
            for (int t = 0; t < ort[s].Length; t++)
            {
                double cos = Similarity.Cosine(states.AsSpan(t * h, h), ort[s][t]);
                Assert.True(cos >= 0.999, $"{name} sequence {s} token {t}: cosine {cos}");
            }
        }
    }

    [Fact]
    public void QuantizedCrossEncoderAgreesWithOnnxRuntime()
    {
        OnnxFixtures.Variant v = OnnxFixtures.Get("ce-op14-int8");
        float[] ort = OnnxFixtures.ExpectedOf(v).OrtLogits!;
        using CrossEncoder encoder = CrossEncoder.Load(_fixtures.Folder(v));
        float[] actual = encoder.ScoreTokens(PairInputs());
        for (int i = 0; i < actual.Length; i++) Assert.True(Math.Abs(actual[i] - ort[i]) <= 0.15f, $"pair {i}: {actual[i]} vs {ort[i]}");
    }

    [Theory]
    [InlineData("bi-op11-legacy", false)]
    [InlineData("bi-op17", false)]
    [InlineData("bi-prefixed-op13", false)]
    [InlineData("ce-op14", true)]
    public void OnnxAndSafetensorsOfTheSameWeightsGiveIdenticalOutputs(string name, bool crossEncoder)
    {
        // SeededCheckpoint writes the fixture's seeded weights as safetensors: both load paths must give the same bits.
        OnnxFixtures.Variant v = OnnxFixtures.Get(name);
        string onnx = _fixtures.Folder(v);
        string safetensors = onnx + "-safetensors";
        int seed = OnnxFixtures.Reference.GetProperty("seeds").GetProperty(v.Head).GetInt32();
        SeededCheckpoint.Write(safetensors, onnx, seed, new SeededCheckpointOptions { Architecture = CheckpointArchitecture.Small, CrossEncoder = crossEncoder });
        if (crossEncoder)
        {
            using CrossEncoder a = CrossEncoder.Load(onnx), b = CrossEncoder.Load(safetensors);
            Assert.Equal(b.ScoreTokens(PairInputs()), a.ScoreTokens(PairInputs()));
            return;
        }
        using SentenceEncoder x = SentenceEncoder.Load(onnx), y = SentenceEncoder.Load(safetensors);
        foreach (int[] ids in OnnxFixtures.Ids)
            Assert.Equal(y.HiddenStates(new TokenSequence(ids, new int[ids.Length])), x.HiddenStates(new TokenSequence(ids, new int[ids.Length])));
    }

    [Fact]
    public void TextsTokenizeAsTheReferenceAndEncode()
    {
        OnnxFixtures.Variant v = OnnxFixtures.Get("bi-op14");
        using SentenceEncoder encoder = SentenceEncoder.Load(_fixtures.Folder(v));
        string[] texts = OnnxFixtures.Texts;
        for (int i = 0; i < texts.Length; i++) Assert.Equal(OnnxFixtures.Ids[i], encoder.Tokenizer.Encode(texts[i], encoder.MaxSequenceLength).InputIds);
        float[][] vectors = encoder.Encode(texts);
        Assert.All(vectors, vec => Assert.Equal(1.0, Math.Sqrt(vec.Sum(x => (double)x * x)), 5));
    }

    [Fact]
    public void TheOptimumLayoutOnnxSubfolderLoads()
    {
        OnnxFixtures.Variant v = OnnxFixtures.Get("bi-op14-external");
        using SentenceEncoder root = SentenceEncoder.Load(_fixtures.Folder(v));
        using SentenceEncoder sub = SentenceEncoder.Load(_fixtures.Folder(v, "onnx/model.onnx"));
        int[] ids = OnnxFixtures.Ids[2];
        Assert.Equal(root.HiddenStates(new TokenSequence(ids, new int[ids.Length])), sub.HiddenStates(new TokenSequence(ids, new int[ids.Length])));
    }

    [Fact]
    public void SafetensorsWinOverOnnxAndModelOnnxOverTheSubfolder()
    {
        OnnxFixtures.Variant v = OnnxFixtures.Get("bi-op14");
        string dir = _fixtures.Folder(v);
        File.WriteAllText(Path.Combine(dir, "onnx-garbage"), "not a model");
        Directory.CreateDirectory(Path.Combine(dir, "onnx"));
        File.Copy(Path.Combine(dir, "onnx-garbage"), Path.Combine(dir, "onnx", "model.onnx"));
        using (SentenceEncoder encoder = SentenceEncoder.Load(dir)) // model.onnx, not the broken onnx/model.onnx
            Assert.Equal(Sha256(Path.Combine(dir, "model.onnx")), encoder.Fingerprint.WeightsSha256);

        string safetensors = dir + "-both";
        SeededCheckpoint.Write(safetensors, dir, seed: 5, new SeededCheckpointOptions { Architecture = CheckpointArchitecture.Small });
        File.Copy(Path.Combine(dir, "onnx-garbage"), Path.Combine(safetensors, "model.onnx"));
        using SentenceEncoder fromSafetensors = SentenceEncoder.Load(safetensors);
        Assert.Equal(Sha256(Path.Combine(safetensors, "model.safetensors")), fromSafetensors.Fingerprint.WeightsSha256);
    }

    [Fact]
    public void FingerprintCoversTheExternalDataFile()
    {
        OnnxFixtures.Variant v = OnnxFixtures.Get("bi-op14-external");
        string dir = _fixtures.Folder(v);
        using SentenceEncoder encoder = SentenceEncoder.Load(dir);
        byte[] both = [.. File.ReadAllBytes(Path.Combine(dir, "model.onnx")), .. File.ReadAllBytes(Path.Combine(dir, "bi-op14-external.onnx_data"))];
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(both)), encoder.Fingerprint.WeightsSha256);
    }

    private static string Sha256(string path) => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path)));

    private static TokenSequence[] PairInputs() =>
        OnnxFixtures.PairIds.Select((ids, i) => new TokenSequence(ids, OnnxFixtures.PairTypeIds[i])).ToArray();

    public void Dispose() => _fixtures.Dispose();
}
