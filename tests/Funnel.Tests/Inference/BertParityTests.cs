using System.Security.Cryptography;
using Funnel.Inference;

namespace Funnel.Tests.Inference;

/// <summary>
/// Funnel's unpadded BERT forward pass against the independent PyTorch reference (padded batch,
/// additive mask, float64), on seeded random checkpoints that both sides generate bit for bit.
/// </summary>
[Collection(ReferenceCollection.Name)]
public sealed class BertParityTests(ReferenceFixture reference)
{
    private const double MinCosine = 0.99999;
    private const float LogitTolerance = 1e-3f;

    private static readonly string[] BiEncoderNames = ["minilm-bi", "small-bi", "small-bi-f16", "small-bi-bf16", "small-bi-cls", "small-bi-max", "small-bi-sharded",
        "small-bi-cls-meansqrt", "small-bi-cls-max-mean"];
    private static readonly string[] CrossEncoderNames = ["minilm-ce", "small-ce"];

    public static TheoryData<string> BiEncoders => new(BiEncoderNames);

    public static TheoryData<string> CrossEncoders => new(CrossEncoderNames);

    public static TheoryData<string> AllVariants => new([.. BiEncoderNames, .. CrossEncoderNames]);

    [Theory]
    [MemberData(nameof(AllVariants))]
    public void SeededCheckpointIsByteIdenticalToThePythonOne(string name)
    {
        ReferenceFixture.Variant v = reference.Get(name);
        Assert.NotEmpty(v.Sha256);
        foreach (var (file, expected) in v.Sha256)
            Assert.Equal(expected, Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(Path.Combine(v.Dir, file)))));
    }

    [Theory]
    [MemberData(nameof(BiEncoders))]
    public void EmbeddingsMatchPyTorch(string name)
    {
        ReferenceFixture.Variant v = reference.Get(name);
        using SentenceEncoder encoder = SentenceEncoder.Load(v.Dir, new EncoderOptions { BatchSize = 3 });
        float[][] actual = encoder.EncodeTokens(Inputs());
        Assert.Equal(v.Embeddings!.Length, actual.Length);
        for (int i = 0; i < actual.Length; i++)
        {
            double cos = Similarity.Cosine(actual[i], v.Embeddings[i]);
            Assert.True(cos >= MinCosine, $"{name} text {i}: cosine {cos:R} < {MinCosine}");
        }
    }

    [Fact]
    public void PerTokenHiddenStatesMatchPyTorch()
    {
        ReferenceFixture.Variant v = reference.Get("minilm-bi");
        using SentenceEncoder encoder = SentenceEncoder.Load(v.Dir);
        foreach (var (index, expected) in v.HiddenStates!)
        {
            float[] states = encoder.HiddenStates(Inputs()[index]);
            int h = expected[0].Length;
            Assert.Equal(expected.Length * h, states.Length);
            for (int t = 0; t < expected.Length; t++)
            {
                ReadOnlySpan<float> row = states.AsSpan(t * h, h);
                double cos = Similarity.Cosine(row, expected[t]);
                Assert.True(cos >= MinCosine, $"text {index} token {t}: cosine {cos:R}");
                for (int d = 0; d < h; d++) Assert.True(Math.Abs(row[d] - expected[t][d]) < 1e-3, $"text {index} token {t} dim {d}: {row[d]} vs {expected[t][d]}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(CrossEncoders))]
    public void LogitsMatchPyTorch(string name)
    {
        ReferenceFixture.Variant v = reference.Get(name);
        using CrossEncoder encoder = CrossEncoder.Load(v.Dir, new EncoderOptions { BatchSize = 2 });
        Assert.Equal(ScoreActivation.Identity, encoder.Activation);
        float[] actual = encoder.ScoreTokens(PairInputs());
        Assert.Equal(v.Logits!.Length, actual.Length);
        for (int i = 0; i < actual.Length; i++)
            Assert.True(Math.Abs(actual[i] - v.Logits[i]) <= LogitTolerance, $"{name} pair {i}: {actual[i]} vs {v.Logits[i]}");
        // The parity check is only meaningful if the reference logits are spread out.
        Assert.True(v.Logits.Max() - v.Logits.Min() > 1.5f);
    }

    [Fact]
    public void EmbeddingsOfDifferentTextsAreFarApart()
    {
        // Guards against a degenerate random model, which would make the cosine parity test vacuous.
        float[][] e = reference.Get("minilm-bi").Embeddings!;
        for (int i = 0; i < e.Length; i++)
            for (int j = i + 1; j < e.Length; j++)
                Assert.True(Similarity.Cosine(e[i], e[j]) < 0.95, $"texts {i} and {j}");
    }

    [Theory]
    [InlineData("small-bi")]
    [InlineData("minilm-bi")]
    public void EmbeddingsDoNotDependOnBatchingOrOrder(string name)
    {
        ReferenceFixture.Variant v = reference.Get(name);
        TokenSequence[] inputs = Inputs();
        using SentenceEncoder one = SentenceEncoder.Load(v.Dir, new EncoderOptions { BatchSize = 1, MaxThreads = 1 });
        using SentenceEncoder many = SentenceEncoder.Load(v.Dir, new EncoderOptions { BatchSize = 32 });
        float[][] single = one.EncodeTokens(inputs);
        float[][] batched = many.EncodeTokens(inputs);
        int[] perm = [5, 2, 7, 0, 3, 6, 1, 4];
        float[][] shuffled = many.EncodeTokens(perm.Select(i => inputs[i]).ToArray());
        for (int i = 0; i < inputs.Length; i++)
        {
            Assert.Equal(single[i], batched[i]);
            Assert.Equal(single[perm[i]], shuffled[i]);
        }
    }

    [Fact]
    public void ScoresDoNotDependOnBatching()
    {
        ReferenceFixture.Variant v = reference.Get("small-ce");
        using CrossEncoder one = CrossEncoder.Load(v.Dir, new EncoderOptions { BatchSize = 1, MaxThreads = 1 });
        using CrossEncoder many = CrossEncoder.Load(v.Dir, new EncoderOptions { BatchSize = 16 });
        Assert.Equal(one.ScoreTokens(PairInputs()), many.ScoreTokens(PairInputs()));
    }

    [Fact]
    public void ConcurrentLoadsOfOneFolder()
    {
        string dir = reference.Get("small-bi-sharded").Dir;
        SentenceEncoder[] encoders = new SentenceEncoder[4];
        Parallel.For(0, encoders.Length, i => encoders[i] = SentenceEncoder.Load(dir));
        Assert.All(encoders, e => Assert.Equal(encoders[0].Fingerprint, e.Fingerprint));
        foreach (SentenceEncoder e in encoders) e.Dispose();
    }

    [Fact]
    public void ConcurrentCallersGetTheSameEmbeddings()
    {
        ReferenceFixture.Variant v = reference.Get("small-bi");
        using SentenceEncoder encoder = SentenceEncoder.Load(v.Dir, new EncoderOptions { BatchSize = 2, MaxThreads = 2 });
        TokenSequence[] inputs = Inputs();
        float[][] expected = encoder.EncodeTokens(inputs);
        float[][][] results = new float[8][][];
        Parallel.For(0, results.Length, i => results[i] = encoder.EncodeTokens(inputs));
        foreach (float[][] r in results)
            for (int i = 0; i < inputs.Length; i++) Assert.Equal(expected[i], r[i]);
    }

    [Fact]
    public void PerturbedWeightBreaksEmbeddingParity()
    {
        // One element of the last LayerNorm's gamma, +0.1: the tolerance must catch it.
        string dir = reference.CopyOf("small-bi");
        SafeTensorsEditing.AddToElement(Path.Combine(dir, "model.safetensors"), "encoder.layer.1.output.LayerNorm.weight", 7, 0.1f);
        using SentenceEncoder encoder = SentenceEncoder.Load(dir);
        float[][] actual = encoder.EncodeTokens(Inputs());
        float[][] expected = reference.Get("small-bi").Embeddings!;
        Assert.Contains(Enumerable.Range(0, actual.Length), i => Similarity.Cosine(actual[i], expected[i]) < MinCosine);
    }

    [Fact]
    public void PerturbedWeightBreaksLogitParity()
    {
        string dir = reference.CopyOf("small-ce");
        SafeTensorsEditing.AddToElement(Path.Combine(dir, "model.safetensors"), "bert.encoder.layer.0.attention.self.value.weight", 5, 0.05f);
        using CrossEncoder encoder = CrossEncoder.Load(dir);
        float[] actual = encoder.ScoreTokens(PairInputs());
        float[] expected = reference.Get("small-ce").Logits!;
        Assert.Contains(Enumerable.Range(0, actual.Length), i => Math.Abs(actual[i] - expected[i]) > LogitTolerance);
    }

    [Fact]
    public void TextsEncodeEndToEndLikeTheReference()
    {
        // The reference's own WordPiece gives the ids; Funnel's tokenizer must agree, and the text API must match.
        ReferenceFixture.Variant v = reference.Get("minilm-bi");
        using SentenceEncoder encoder = SentenceEncoder.Load(v.Dir);
        Assert.Equal(256, encoder.MaxSequenceLength);
        Assert.Equal(384, encoder.Dimension);
        for (int i = 0; i < reference.Texts.Length; i++) Assert.Equal(reference.Ids[i], encoder.Tokenizer.Encode(reference.Texts[i], 256).InputIds);
        float[][] actual = encoder.Encode(reference.Texts);
        for (int i = 0; i < actual.Length; i++) Assert.True(Similarity.Cosine(actual[i], v.Embeddings![i]) >= MinCosine, $"text {i}");
        Assert.Equal(actual[3], encoder.Encode(reference.Texts[3]));
        Assert.Equal(actual, encoder.EncodeTokenized(encoder.Tokenizer.EncodeBatch(reference.Texts, 256)));
    }

    [Fact]
    public void DocumentsScoreAndRankEndToEndLikeTheReference()
    {
        ReferenceFixture.Variant v = reference.Get("minilm-ce");
        using CrossEncoder encoder = CrossEncoder.Load(v.Dir);
        Assert.Equal(512, encoder.MaxSequenceLength);
        for (int i = 0; i < reference.Documents.Length; i++)
        {
            var e = encoder.Tokenizer.EncodePair(reference.Query, reference.Documents[i], 512);
            Assert.Equal(reference.PairIds[i], e.InputIds);
            Assert.Equal(reference.PairTypeIds[i], e.TokenTypeIds);
        }
        float[] scores = encoder.Score(reference.Query, reference.Documents);
        for (int i = 0; i < scores.Length; i++) Assert.True(Math.Abs(scores[i] - v.Logits![i]) <= LogitTolerance, $"document {i}");
        Assert.Equal(scores, encoder.ScoreTokenized(reference.Documents.Select(d => encoder.Tokenizer.EncodePair(reference.Query, d, 512)).ToList()));
        int[] expectedOrder = v.Logits!.Select((s, i) => (s, i)).OrderByDescending(p => p.s).Select(p => p.i).Take(3).ToArray();
        IReadOnlyList<RankedDocument> top = encoder.Rank(reference.Query, reference.Documents, 3);
        Assert.Equal(expectedOrder, top.Select(r => r.Index).ToArray());
        Assert.Equal(top.Select(r => scores[r.Index]), top.Select(r => r.Score));
    }

    [Fact]
    public void EmptyInputsGiveEmptyResults()
    {
        using SentenceEncoder bi = SentenceEncoder.Load(reference.Get("small-bi").Dir);
        using CrossEncoder ce = CrossEncoder.Load(reference.Get("small-ce").Dir);
        Assert.Empty(bi.Encode([]));
        Assert.Empty(ce.Score("q", []));
        Assert.Empty(ce.Rank("q", ["a", "b"], 0));
        Assert.Equal(2, ce.Rank("q", ["a", "b"], 5).Count);
    }

    [Fact]
    public void MaxSequenceLengthTruncatesToTheFirstTokensAndSep()
    {
        ReferenceFixture.Variant v = reference.Get("small-bi");
        using SentenceEncoder full = SentenceEncoder.Load(v.Dir);
        using SentenceEncoder short8 = SentenceEncoder.Load(v.Dir, new EncoderOptions { MaxSequenceLength = 8 });
        Assert.Equal(8, short8.MaxSequenceLength);
        int[] ids = reference.Ids[6];
        int[] truncated = [.. ids[..7], ids[^1]];
        Assert.Equal(full.EncodeTokens([new TokenSequence(truncated, new int[8])])[0], short8.Encode(reference.Texts[6]));
    }

    [Fact]
    public void PromptsArePrependedAsConfigured()
    {
        string dir = reference.CopyOf("small-bi");
        File.WriteAllText(Path.Combine(dir, "config_sentence_transformers.json"),
            """{"prompts": {"query": "query: ", "passage": "passage: "}, "default_prompt_name": "passage", "similarity_fn_name": "cosine"}""");
        using SentenceEncoder encoder = SentenceEncoder.Load(dir);
        Assert.Equal("passage", encoder.DefaultPromptName);
        string[] texts = ["how many people live in berlin"];
        float[] plain = encoder.Encode(texts, promptName: null)[0];
        Assert.Equal(encoder.Encode(["query: " + texts[0]], promptName: null)[0], encoder.Encode(texts, "query")[0]);
        Assert.Equal(encoder.Encode(["passage: " + texts[0]], promptName: null)[0], encoder.Encode(texts)[0]);
        Assert.True(Similarity.Cosine(plain, encoder.Encode(texts, "query")[0]) < 0.999);
        Assert.Contains("no prompt \"doc\"", Assert.Throws<ArgumentException>(() => encoder.Encode(texts, "doc")).Message);
    }

    [Fact]
    public void CancellationStopsEncoding()
    {
        using SentenceEncoder encoder = SentenceEncoder.Load(reference.Get("small-bi").Dir);
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => encoder.Encode(reference.Texts, cts.Token));
    }

    private TokenSequence[] Inputs() => reference.Ids.Select(ids => new TokenSequence(ids, new int[ids.Length])).ToArray();

    private TokenSequence[] PairInputs() => reference.PairIds.Select((ids, i) => new TokenSequence(ids, reference.PairTypeIds[i])).ToArray();
}
