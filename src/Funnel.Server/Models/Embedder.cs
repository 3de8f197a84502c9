using Funnel.Inference;
using Funnel.Server.Batching;
using Funnel.Server.Metrics;

namespace Funnel.Server.Models;

/// <summary>
/// The bi-encoder behind the dynamic batcher. Batches compute pooled vectors without the Normalize module, so that
/// requests that want raw vectors (TEI's <c>normalize: false</c>) and requests that want unit vectors share batches;
/// <see cref="EmbedAsync"/> then applies the same normalisation the model's own module would.
/// </summary>
public sealed class Embedder : IAsyncDisposable
{
    public Embedder(SentenceEncoder encoder, string id, BatcherOptions batching, ServerMetrics metrics)
    {
        Encoder = encoder;
        Model = new BatchedModel<string, float[]>(id, encoder.MaxSequenceLength,
            text => encoder.Tokenizer.Encode(text, int.MaxValue).Length,
            texts => encoder.EncodePooled(texts),
            batching, metrics);
    }

    public SentenceEncoder Encoder { get; }
    public BatchedModel<string, float[]> Model { get; }
    public string Id => Model.Id;
    public int Dimension => Encoder.Dimension;

    /// <summary>Embeds <paramref name="texts"/>, unit length when <paramref name="normalize"/> (null: as the model does).</summary>
    public async Task<ModelOutput<float[]>> EmbedAsync(IReadOnlyList<string> texts, string field, bool truncate, bool? normalize, CancellationToken cancellationToken)
    {
        ModelOutput<float[]> output = await Model.RunAsync(texts, field, truncate, cancellationToken);
        if (normalize ?? Encoder.Normalize)
            foreach (float[] vector in output.Results) SentenceEncoder.NormalizeInPlace(vector);
        return output;
    }

    public ValueTask DisposeAsync() => Model.DisposeAsync();
}
