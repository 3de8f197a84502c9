using Funnel.Inference;
using Funnel.Server.Batching;
using Funnel.Server.Metrics;

namespace Funnel.Server.Models;

/// <summary>
/// A <see cref="CrossEncoder"/> as an <see cref="IReranker"/> whose calls share dynamic batches (the rerank routes and collection
/// searches). Pairs are tokenized once, on the request's thread; batches compute logits, and each request applies the model's
/// activation: the same scores and logits as <see cref="CrossEncoder.ScoreAsync"/>.
/// </summary>
internal sealed class BatchingReranker : IReranker, IAsyncDisposable
{
    private readonly BatchedModel<float> _model;

    public BatchingReranker(CrossEncoder encoder, string id, BatcherOptions batching, ServerMetrics metrics)
    {
        Encoder = encoder;
        _model = new BatchedModel<float>(id, inputs => encoder.ScoreAndLogits(inputs).Logits, batching, metrics);
    }

    public CrossEncoder Encoder { get; }
    public string Id => _model.Id;
    public int MaxInputTokens => Encoder.MaxSequenceLength;
    public BatcherOptions Batching => _model.Batching;

    /// <summary>The model's measured throughput, which bounds its queue by expected wait.</summary>
    public ThroughputEstimate Throughput => _model.Throughput;

    public async Task<RerankScores> ScoreAsync(string query, IReadOnlyList<string> documents, RerankOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        ArgumentNullException.ThrowIfNull(documents);
        TokenSequence[] inputs = Encoder.Tokenize(documents.Select(d => (query, d)).ToList(), options?.Truncate ?? true, cancellationToken);
        var (logits, tokens) = await _model.RunAsync(inputs, cancellationToken, options?.Timeout);
        return new RerankScores([.. logits.Select(Encoder.Activate)], logits, tokens);
    }

    public ValueTask DisposeAsync() => _model.DisposeAsync();
}
