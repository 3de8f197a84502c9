using Funnel.Inference;
using Funnel.Server.Batching;
using Funnel.Server.Metrics;
using Funnel.Server.Models;
using Microsoft.Extensions.AI;

namespace Funnel.Tests.Server;

/// <summary>The service's batchers as decorators of <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/> and <see cref="IReranker"/>.</summary>
public sealed class BatchingDecoratorTests(Funnel.Tests.Retrieval.SmallModels models) : IClassFixture<Funnel.Tests.Retrieval.SmallModels>
{
    private static readonly string[] Texts = ["How many people live in Berlin?", "Berlin is the capital of Germany.", "", "Hamburg has a port", "Paris"];

    [Fact]
    public async Task TheEmbeddingBatcherTokenizesEachTextOnceAndGivesTheEncodersVectors()
    {
        using SentenceEncoder encoder = SentenceEncoder.Load(models.BiEncoderPath);
        await using var batching = new BatchingEmbeddingGenerator(encoder, "bi", new BatcherOptions { MaxWait = TimeSpan.FromMilliseconds(20) }, new ServerMetrics());
        float[][] expected = encoder.EncodeQueries(Texts);
        float[][] pooled = encoder.EncodePooled(Texts);

        long before = encoder.Tokenizer.EncodedCount;
        // Concurrent requests with different settings share batches; each gets its own vectors.
        Task<GeneratedEmbeddings<Embedding<float>>> queries = batching.GenerateAsync(Texts, SentenceEmbeddingOptions.ForQueries());
        Task<GeneratedEmbeddings<Embedding<float>>> raw = batching.GenerateAsync(Texts, new SentenceEmbeddingOptions { Normalize = false }.ToGenerationOptions());
        Assert.Equal(expected, (await queries).Select(e => e.Vector.ToArray()));
        Assert.Equal(pooled, (await raw).Select(e => e.Vector.ToArray()));
        Assert.Equal(2 * Texts.Length, encoder.Tokenizer.EncodedCount - before);

        // Without truncation, a text over the window is refused before it is queued, after one tokenization.
        before = encoder.Tokenizer.EncodedCount;
        string[] tooLong = [string.Join(' ', Enumerable.Repeat("word", encoder.MaxSequenceLength + 10))];
        var strict = new SentenceEmbeddingOptions { Truncate = false }.ToGenerationOptions();
        Assert.Equal(0, (await Assert.ThrowsAsync<InputTooLongException>(() => batching.GenerateAsync(tooLong, strict))).Index);
        Assert.Equal(1, encoder.Tokenizer.EncodedCount - before);
        Assert.Equal(encoder.Fingerprint, ((IEmbeddingGenerator)batching).GetService<ModelFingerprint>());
    }

    [Fact]
    public async Task TheRerankBatcherTokenizesEachPairOnceAndGivesTheCrossEncodersScores()
    {
        using CrossEncoder encoder = CrossEncoder.Load(models.CrossEncoderPath, new EncoderOptions { Activation = ScoreActivation.Sigmoid });
        await using var batching = new BatchingReranker(encoder, "cross", new BatcherOptions(), new ServerMetrics());
        RerankScores expected = await encoder.ScoreAsync("Berlin", Texts);

        long before = encoder.Tokenizer.EncodedCount;
        RerankScores scores = await batching.ScoreAsync("Berlin", Texts);
        Assert.Equal(Texts.Length, encoder.Tokenizer.EncodedCount - before);
        Assert.Equal(expected.Scores, scores.Scores);
        Assert.Equal(expected.Logits, scores.Logits);
        Assert.Equal(expected.Tokens, scores.Tokens);
        Assert.All(scores.Scores.Zip(scores.Logits), p => Assert.Equal(1f / (1f + MathF.Exp(-p.Second)), p.First));
    }
}
