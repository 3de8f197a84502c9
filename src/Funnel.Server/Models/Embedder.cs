using Funnel.Inference;
using Funnel.Server.Batching;
using Funnel.Server.Metrics;

namespace Funnel.Server.Models;

/// <summary>
/// The bi-encoder behind the dynamic batcher. Batches compute pooled vectors without the Normalize module, so that
/// requests that want raw vectors (TEI's <c>normalize: false</c>) and requests that want unit vectors share batches;
/// <see cref="EmbedAsync"/> then applies the same normalisation the model's own module would. Prompts are prepended before
/// texts enter the batcher, so requests with different prompts (queries, documents) share batches too, and a prompt's
/// tokens count toward the input's length as they do in sentence-transformers.
/// </summary>
public sealed class Embedder : IAsyncDisposable
{
    public Embedder(SentenceEncoder encoder, string id, BatcherOptions batching, ServerMetrics metrics)
    {
        Encoder = encoder;
        Model = new BatchedModel<string, float[]>(id, encoder.MaxSequenceLength,
            text => encoder.Tokenizer.Encode(text, int.MaxValue).Length,
            texts => encoder.EncodePooled(texts, promptName: null),
            batching, metrics);
    }

    public SentenceEncoder Encoder { get; }
    public BatchedModel<string, float[]> Model { get; }
    public string Id => Model.Id;
    public int Dimension => Encoder.Dimension;

    /// <summary>
    /// Embeds <paramref name="texts"/> after the prompt <paramref name="promptName"/> (null: none), unit length when
    /// <paramref name="normalize"/> (null: as the model does): what <see cref="SentenceEncoder.Encode(IReadOnlyList{string}, string?, CancellationToken)"/> gives.
    /// </summary>
    public async Task<ModelOutput<float[]>> EmbedAsync(IReadOnlyList<string> texts, string field, bool truncate, bool? normalize, string? promptName,
        CancellationToken cancellationToken, TimeSpan? deadline = null)
    {
        string prompt = Encoder.PromptText(promptName);
        IReadOnlyList<string> prompted = prompt.Length == 0 ? texts : [.. texts.Select(text => prompt + text)];
        ModelOutput<float[]> output = await Model.RunAsync(prompted, field, truncate, cancellationToken, deadline);
        if (normalize ?? Encoder.Normalize)
            foreach (float[] vector in output.Results) SentenceEncoder.NormalizeInPlace(vector);
        return output;
    }

    public ValueTask DisposeAsync() => Model.DisposeAsync();
}
