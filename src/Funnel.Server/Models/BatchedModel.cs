using Funnel.Inference;
using Funnel.Server.Batching;
using Funnel.Server.Http;
using Funnel.Server.Metrics;

namespace Funnel.Server.Models;

/// <summary>
/// A model behind a <see cref="DynamicBatcher{TItem,TResult}"/>, fed token sequences: each request's texts are tokenized once,
/// on the request's thread, and the sequences queue with their lengths as batch cost, so the worker only runs the model.
/// Records per-model metrics. Shared by <see cref="BatchingEmbeddingGenerator"/> and <see cref="BatchingReranker"/>.
/// </summary>
internal sealed class BatchedModel<TResult> : IAsyncDisposable
{
    private readonly DynamicBatcher<TokenSequence, TResult> _batcher;
    private readonly ServerMetrics _metrics;

    /// <param name="id">The model id reported to clients and used as the metrics label.</param>
    /// <param name="run">The model itself: one result per sequence, in order.</param>
    public BatchedModel(string id, DynamicBatcher<TokenSequence, TResult>.BatchFunction run, BatcherOptions batching, ServerMetrics metrics)
    {
        Id = id;
        _metrics = metrics;
        _batcher = new DynamicBatcher<TokenSequence, TResult>(run, batching, report => metrics.RecordBatch(id, report), $"batcher:{id}");
        metrics.QueueDepth.Track(() => _batcher.QueuedItems, id);
    }

    public string Id { get; }
    public BatcherOptions Batching => _batcher.Options;

    /// <summary>Runs tokenized inputs through the model; returns their results and the tokens they took.</summary>
    public async Task<(TResult[] Results, long Tokens)> RunAsync(IReadOnlyList<TokenSequence> inputs, CancellationToken cancellationToken)
    {
        var costs = new int[inputs.Count];
        long total = 0;
        for (int i = 0; i < costs.Length; i++) total += costs[i] = inputs[i].Ids.Length;
        TResult[] results;
        try
        {
            results = await _batcher.SubmitAsync(inputs, costs, cancellationToken);
        }
        catch (ObjectDisposedException) when (_batcher.IsClosed)
        {
            throw ApiException.Unavailable("the server is shutting down");
        }
        _metrics.Inputs.Increment(inputs.Count, Id);
        _metrics.Tokens.Increment(total, Id);
        return (results, total);
    }

    public ValueTask DisposeAsync() => _batcher.DisposeAsync();
}
