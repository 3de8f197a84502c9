using Funnel.Inference;
using Microsoft.Extensions.AI;

namespace Funnel.Tests.Inference;

/// <summary><see cref="SentenceEncoder"/> as Microsoft.Extensions.AI's <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/>.</summary>
public sealed class EmbeddingGeneratorTests(PromptModels models) : IClassFixture<PromptModels>
{
    private static readonly string[] Texts = ["How many people live in Berlin?", "Berlin had 3,520,031 registered inhabitants.", "", "a longer text " + string.Join(' ', Enumerable.Repeat("word", 40))];

    private static float[][] Vectors(GeneratedEmbeddings<Embedding<float>> generated) => [.. generated.Select(e => e.Vector.ToArray())];

    [Fact]
    public async Task Each_role_gives_exactly_what_the_encode_methods_give()
    {
        IEmbeddingGenerator<string, Embedding<float>> generator = models.Prompted;
        Assert.Equal(models.Prompted.Encode(Texts), Vectors(await generator.GenerateAsync(Texts)));
        Assert.Equal(models.Prompted.EncodeQueries(Texts), Vectors(await generator.GenerateAsync(Texts, SentenceEmbeddingOptions.ForQueries())));
        Assert.Equal(models.Prompted.EncodeDocuments(Texts), Vectors(await generator.GenerateAsync(Texts, SentenceEmbeddingOptions.ForDocuments())));
        // A prompt named outright wins over the role; normalize: false gives the pooled vectors.
        var byName = new SentenceEmbeddingOptions { Role = EmbeddingRole.Document, PromptName = "query" }.ToGenerationOptions();
        Assert.Equal(models.Prompted.EncodeQueries(Texts), Vectors(await generator.GenerateAsync(Texts, byName)));
        var pooled = new SentenceEmbeddingOptions { Normalize = false }.ToGenerationOptions();
        Assert.Equal(models.Prompted.EncodePooled(Texts), Vectors(await generator.GenerateAsync(Texts, pooled)));
        // The same keys given as a client would (strings, e.g. deserialized options) read the same.
        var loose = new EmbeddingGenerationOptions { AdditionalProperties = new() { ["input_type"] = "query" } };
        Assert.Equal(models.Prompted.EncodeQueries(Texts), Vectors(await generator.GenerateAsync(Texts, loose)));
    }

    [Fact]
    public async Task Usage_metadata_and_services_describe_the_model()
    {
        IEmbeddingGenerator<string, Embedding<float>> generator = models.Prompted;
        GeneratedEmbeddings<Embedding<float>> generated = await generator.GenerateAsync(Texts, SentenceEmbeddingOptions.ForQueries());
        long tokens = Texts.Sum(t => models.Prompted.Tokenizer.Encode(PromptModels.QueryPrompt + t, models.Prompted.MaxSequenceLength).Length);
        Assert.Equal(tokens, generated.Usage!.InputTokenCount);
        Assert.All(generated, e => Assert.Equal(models.Prompted.Dimension, e.Dimensions));
        Assert.All(generated, e => Assert.Equal("prompted", e.ModelId));
        EmbeddingGeneratorMetadata metadata = generator.GetRequiredService<EmbeddingGeneratorMetadata>();
        Assert.Equal(models.Prompted.Dimension, metadata.DefaultModelDimensions);
        Assert.Equal(models.Prompted.Fingerprint, generator.GetService<ModelFingerprint>());
        Assert.Same(models.Prompted, generator.GetService<SentenceEncoder>());
        Assert.Null(generator.GetService<SentenceEncoder>("some key"));
    }

    [Fact]
    public async Task Bad_options_are_refused_with_what_was_expected()
    {
        IEmbeddingGenerator<string, Embedding<float>> generator = models.Prompted;
        var role = new EmbeddingGenerationOptions { AdditionalProperties = new() { ["input_type"] = "passage" } };
        Assert.Contains("\"query\" or \"document\"", (await Assert.ThrowsAsync<ArgumentException>(() => generator.GenerateAsync(Texts, role))).Message);
        var prompt = new SentenceEmbeddingOptions { PromptName = "nope" }.ToGenerationOptions();
        Assert.Contains("it has: query, passage", (await Assert.ThrowsAsync<ArgumentException>(() => generator.GenerateAsync(Texts, prompt))).Message);
        var dimensions = new EmbeddingGenerationOptions { Dimensions = 7 };
        Assert.Contains("cannot shorten", (await Assert.ThrowsAsync<NotSupportedException>(() => generator.GenerateAsync(Texts, dimensions))).Message);
        // Without truncation an input over the window is refused, naming it and its length.
        using SentenceEncoder short8 = SentenceEncoder.Load(models.PlainFolder, new EncoderOptions { MaxSequenceLength = 8 });
        var strict = new SentenceEmbeddingOptions { Truncate = false }.ToGenerationOptions();
        var tooLong = await Assert.ThrowsAsync<InputTooLongException>(() => short8.GenerateAsync(["short", "one two three four five six seven eight"], strict));
        Assert.Equal(1, tooLong.Index);
        Assert.Equal(short8.Tokenizer.Encode("one two three four five six seven eight", int.MaxValue).Length, tooLong.Tokens);
        // Truncated (the default), it is what Encode gives.
        Assert.Equal(short8.Encode(["one two three four five six seven eight"]), Vectors(await short8.GenerateAsync(["one two three four five six seven eight"])));
    }

    [Fact]
    public async Task From_pretrained_loads_a_folder_like_load()
    {
        using SentenceEncoder loaded = await SentenceEncoder.FromPretrainedAsync(models.PromptedFolder);
        Assert.Equal(models.Prompted.Fingerprint, loaded.Fingerprint);
        Assert.Equal(models.Prompted.EncodeQueries(Texts), loaded.EncodeQueries(Texts));
        await Assert.ThrowsAnyAsync<Exception>(() => SentenceEncoder.FromPretrainedAsync(Path.Combine(models.Root, "missing", "folder")));
    }
}

public sealed class ScoreOrderTests
{
    [Fact]
    public void Best_first_ties_in_input_order_nan_last()
    {
        Assert.Equal([1, 4, 2, 0, 3, 5], ScoreOrder.BestFirst([0.5f, 3f, 2f, float.NaN, 3f, float.NaN]));
        Assert.Equal([0, 1, 2], ScoreOrder.BestFirst([1f, 1f, 1f]));
        Assert.Equal([2, 0, 1], ScoreOrder.BestFirst([0f, float.NegativeInfinity, float.PositiveInfinity]));
        Assert.Empty(ScoreOrder.BestFirst([]));
    }
}
