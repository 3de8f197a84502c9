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
    public BatchedModel(string id, DynamicBatcher<TokenSequence, TResult>.BatchFunction run, BatcherOptions batching, ServerMetrics metrics, TimeProvider? time = null)
    {
        Id = id;
        _metrics = metrics;
        _batcher = new DynamicBatcher<TokenSequence, TResult>(run, batching, report => metrics.RecordBatch(id, report), $"batcher:{id}", time);
        metrics.TrackQueue(id, () => _batcher.QueuedItems, () => _batcher.ExpectedWait.TotalSeconds, () => _batcher.Throughput.CostPerSecond ?? 0);
    }

    public string Id { get; }
    public BatcherOptions Batching => _batcher.Options;

    /// <summary>How long a request queued now would wait before it starts (from the model's measured throughput).</summary>
    public TimeSpan ExpectedWait => _batcher.ExpectedWait;

    /// <summary>The model's measured throughput, which bounds its queue by expected wait.</summary>
    public ThroughputEstimate Throughput => _batcher.Throughput;

    /// <summary>
    /// Runs tokenized inputs through the model; returns their results and the tokens they took. With a <paramref name="deadline"/>,
    /// a request the model cannot finish in time is refused at once, and one still queued when it passes is withdrawn:
    /// <see cref="ModelUnavailableException"/> either way, as when the queue is over its bound.
    /// </summary>
    public async Task<(TResult[] Results, long Tokens)> RunAsync(IReadOnlyList<TokenSequence> inputs, CancellationToken cancellationToken, TimeSpan? deadline = null)
    {
        var costs = new int[inputs.Count];
        long total = 0;
        for (int i = 0; i < costs.Length; i++) total += costs[i] = inputs[i].Ids.Length;
        TResult[] results;
        using var timeout = deadline is not null ? CancellationTokenSource.CreateLinkedTokenSource(cancellationToken) : null;
        timeout?.CancelAfter(deadline!.Value);
        try
        {
            results = await _batcher.SubmitAsync(inputs, costs, timeout?.Token ?? cancellationToken, deadline);
        }
        catch (ObjectDisposedException) when (_batcher.IsClosed)
        {
            throw ApiException.Unavailable("the server is shutting down");
        }
        catch (QueueFullException full)
        {
            _metrics.RecordRejection(Id, "overloaded");
            throw new ModelUnavailableException($"{Id}: {full.Message}; retry after the Retry-After seconds", ModelUnavailableReason.Overloaded, full.ExpectedWait);
        }
        catch (DeadlineException late)
        {
            _metrics.RecordRejection(Id, "deadline");
            throw new ModelUnavailableException($"{Id}: {late.Message}", ModelUnavailableReason.DeadlineUnmet, late.ExpectedWait);
        }
        catch (OperationCanceledException) when (timeout is { IsCancellationRequested: true } && !cancellationToken.IsCancellationRequested)
        {
            _metrics.RecordRejection(Id, "deadline");
            throw new ModelUnavailableException($"{Id}: the request's {deadline!.Value.TotalMilliseconds:F0} ms passed while it waited for the model",
                ModelUnavailableReason.DeadlineUnmet, _batcher.ExpectedWait);
        }
        _metrics.RecordAccepted(Id, inputs.Count, total);
        return (results, total);
    }

    public ValueTask DisposeAsync() => _batcher.DisposeAsync();
}
