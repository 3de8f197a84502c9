using Funnel.Inference;
using Funnel.Server.Batching;
using Funnel.Server.Metrics;

namespace Funnel.Server.Models;

/// <summary>The bi-encoder behind the dynamic batcher.</summary>
public sealed class Embedder : IAsyncDisposable
{
    public Embedder(SentenceEncoder encoder, string id, BatcherOptions batching, ServerMetrics metrics)
    {
        Encoder = encoder;
        Model = new BatchedModel<string, float[]>(id, encoder.MaxSequenceLength,
            text => encoder.Tokenizer.Encode(text, int.MaxValue).Length,
            texts => encoder.Encode(texts),
            batching, metrics);
    }

    public SentenceEncoder Encoder { get; }
    public BatchedModel<string, float[]> Model { get; }
    public string Id => Model.Id;
    public int Dimension => Encoder.Dimension;

    public ValueTask DisposeAsync() => Model.DisposeAsync();
}
