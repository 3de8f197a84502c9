using Funnel.Inference;
using Funnel.Server.Batching;
using Funnel.Server.Metrics;
using Microsoft.Extensions.AI;

namespace Funnel.Server.Models;

/// <summary>
/// A <see cref="SentenceEncoder"/> as an <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/> whose calls share dynamic batches:
/// concurrent requests (the <c>/embed</c> routes, collection searches) coalesce into one forward pass. Same options and same
/// vectors as the encoder's own <see cref="SentenceEncoder.GenerateAsync"/>. Batches compute pooled vectors without the
/// Normalize module, so requests that want raw vectors (TEI's <c>normalize: false</c>) and unit vectors share batches; each
/// request then normalises its own as the model's module would. Prompts are prepended before tokenizing, so requests with
/// different prompts share batches too, and a prompt's tokens count toward the input's length as in sentence-transformers.
/// </summary>
internal sealed class BatchingEmbeddingGenerator : IEmbeddingGenerator<string, Embedding<float>>, IAsyncDisposable
{
    private readonly BatchedModel<float[]> _model;

    public BatchingEmbeddingGenerator(SentenceEncoder encoder, string id, BatcherOptions batching, ServerMetrics metrics)
    {
        Encoder = encoder;
        _model = new BatchedModel<float[]>(id, inputs => encoder.EncodeTokens(inputs, normalize: false), batching, metrics);
    }

    public SentenceEncoder Encoder { get; }
    public string Id => _model.Id;
    public int Dimension => Encoder.Dimension;
    public int MaxInputTokens => Encoder.MaxSequenceLength;
    public BatcherOptions Batching => _model.Batching;

    /// <summary>The model's measured throughput, which bounds its queue by expected wait.</summary>
    public ThroughputEstimate Throughput => _model.Throughput;

    public async Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values, EmbeddingGenerationOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(values);
        IReadOnlyList<string> texts = values as IReadOnlyList<string> ?? values.ToArray();
        Encoder.CheckDimensions(options?.Dimensions);
        SentenceEmbeddingOptions settings = SentenceEmbeddingOptions.From(options);
        string prefix = Encoder.PromptText(Encoder.PromptNameFor(settings));
        TokenSequence[] inputs = Encoder.Tokenize(texts, prefix, settings.Truncate, cancellationToken);
        var (vectors, tokens) = await _model.RunAsync(inputs, cancellationToken, settings.Timeout);
        if (settings.Normalize ?? Encoder.Normalize)
            foreach (float[] vector in vectors) SentenceEncoder.NormalizeInPlace(vector);
        return SentenceEncoder.Generated(vectors, tokens, Id);
    }

    /// <summary>Metadata naming this service's model id; otherwise what the encoder offers (its fingerprint, itself).</summary>
    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(EmbeddingGeneratorMetadata)) return new EmbeddingGeneratorMetadata("funnel", null, Id, Dimension);
        return serviceType.IsInstanceOfType(this) ? this : Encoder.GetService(serviceType);
    }

    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    public ValueTask DisposeAsync() => _model.DisposeAsync();
}
