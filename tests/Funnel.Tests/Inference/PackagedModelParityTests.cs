using Funnel.Inference;
using Funnel.Tests.Packaged;

namespace Funnel.Tests.Inference;

/// <summary>
/// Funnel on the real packaged all-MiniLM-L6-v2 and snowflake-arctic-embed-xs (model.onnx materialized from the NuGet
/// packages) against ONNX Runtime 1.31.1 on the same file (Fixtures/onnx-parity, tools/OnnxReference): per-token last
/// hidden states and pooled vectors of 217 real texts per model, fed the fixture's ids, and the same through the text API.
/// </summary>
public sealed class PackagedModelParityTests(MaterializedModels models) : IClassFixture<MaterializedModels>
{
    private const double MinCosine = 0.99999;

    public static TheoryData<string> Models => new("all-MiniLM-L6-v2", "snowflake-arctic-embed-xs");

    /// <summary>The one place that knows how a packaged model's folder is obtained: today the packaged branch's
    /// <see cref="MaterializedModels"/> (RealPackagesTests.cs), keyed by the Hub id the fixture records.</summary>
    private string FolderOf(OnnxParityFixture fixture) => models.Folders[fixture.Model];

    [Theory]
    [MemberData(nameof(Models))]
    public void PooledVectorsMatchOnnxRuntime(string model)
    {
        OnnxParityFixture f = OnnxParityFixture.Load(model);
        using SentenceEncoder encoder = SentenceEncoder.Load(FolderOf(f), new EncoderOptions { BatchSize = 16 });
        float[][] actual = encoder.EncodeTokens(f.Texts.Select(t => new TokenSequence(t.Ids, t.TypeIds)).ToArray());
        for (int i = 0; i < actual.Length; i++)
        {
            double cos = Similarity.Cosine(actual[i], f.Pooled(i));
            Assert.True(cos >= MinCosine, $"{model} text {i} ({f.Texts[i].Source}, {f.Texts[i].Ids.Length} tokens): cosine {cos:R}");
        }
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void PerTokenHiddenStatesMatchOnnxRuntime(string model)
    {
        OnnxParityFixture f = OnnxParityFixture.Load(model);
        using SentenceEncoder encoder = SentenceEncoder.Load(FolderOf(f));
        for (int i = 0; i < f.Texts.Count; i++)
        {
            OnnxParityFixture.Text t = f.Texts[i];
            float[] states = encoder.HiddenStates(new TokenSequence(t.Ids, t.TypeIds));
            Assert.Equal(t.Ids.Length * f.HiddenSize, states.Length);
            for (int k = 0; k < t.Positions.Length; k++)
            {
                double cos = Similarity.Cosine(states.AsSpan(t.Positions[k] * f.HiddenSize, f.HiddenSize), f.State(i, k));
                Assert.True(cos >= MinCosine, $"{model} text {i} ({t.Source}) token {t.Positions[k]} of {t.Ids.Length}: cosine {cos:R}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void TextsEncodeEndToEndLikeOnnxRuntime(string model)
    {
        // The packaged folder's tokenizer, truncation and prompt must give the fixture's ids, and the text API its vectors.
        OnnxParityFixture f = OnnxParityFixture.Load(model);
        using SentenceEncoder encoder = SentenceEncoder.Load(FolderOf(f), new EncoderOptions { BatchSize = 16 });
        Assert.Equal(f.MaxLength, encoder.MaxSequenceLength);
        Assert.Equal(f.HiddenSize, encoder.Dimension);
        Assert.Equal(f.Pooling == "cls" ? PoolingMode.Cls : PoolingMode.Mean, encoder.Pooling);
        Assert.True(encoder.Normalize);
        Assert.Null(encoder.DefaultPromptName);
        if (f.QueryPrompt != null) Assert.Equal(f.QueryPrompt, encoder.Prompts["query"]);
        foreach (bool query in new[] { false, true })
        {
            int[] indexes = Enumerable.Range(0, f.Texts.Count).Where(i => (f.Texts[i].Prompt.Length > 0) == query).ToArray();
            if (indexes.Length == 0) continue; // all-MiniLM-L6-v2 has no query prompt
            string[] texts = indexes.Select(i => f.Texts[i].Value).ToArray();
            for (int j = 0; j < indexes.Length; j++)
                Assert.Equal(f.Texts[indexes[j]].Ids, encoder.Tokenizer.Encode(f.Texts[indexes[j]].Prompt + texts[j], encoder.MaxSequenceLength).InputIds);
            float[][] actual = encoder.Encode(texts, query ? "query" : null);
            for (int j = 0; j < indexes.Length; j++)
            {
                double cos = Similarity.Cosine(actual[j], f.Pooled(indexes[j]));
                Assert.True(cos >= MinCosine, $"{model} text {indexes[j]} ({f.Texts[indexes[j]].Source}): cosine {cos:R}");
            }
        }
    }

    [Fact]
    public void MiniLmReproducesThePublishedValues()
    {
        OnnxParityFixture f = OnnxParityFixture.Load("all-MiniLM-L6-v2");
        using SentenceEncoder encoder = SentenceEncoder.Load(FolderOf(f));
        float[][] actual = encoder.Encode(ModelCard.MiniLmL6V2.Select(s => s.Text).ToArray());
        for (int i = 0; i < actual.Length; i++) ModelCard.AssertStartsLikeMiniLm(i, actual[i], "Funnel");
    }
}
