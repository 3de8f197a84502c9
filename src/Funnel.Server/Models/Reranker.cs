using Funnel.Inference;
using Funnel.Server.Batching;
using Funnel.Server.Metrics;

namespace Funnel.Server.Models;

/// <summary>The cross-encoder behind the dynamic batcher; items are (query, document) pairs.</summary>
public sealed class Reranker : IAsyncDisposable
{
    public Reranker(CrossEncoder encoder, string id, BatcherOptions batching, ServerMetrics metrics)
    {
        Encoder = encoder;
        Model = new BatchedModel<(string Query, string Document), float>(id, encoder.MaxSequenceLength,
            pair => encoder.Tokenizer.EncodePair(pair.Query, pair.Document, int.MaxValue).Length,
            pairs => encoder.Score(pairs),
            batching, metrics);
    }

    public CrossEncoder Encoder { get; }
    public BatchedModel<(string Query, string Document), float> Model { get; }
    public string Id => Model.Id;

    public ValueTask DisposeAsync() => Model.DisposeAsync();
}
