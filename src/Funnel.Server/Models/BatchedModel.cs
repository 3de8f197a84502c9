using Funnel.Server.Batching;
using Funnel.Server.Http;
using Funnel.Server.Metrics;

namespace Funnel.Server.Models;

/// <summary>What a model returned for one request, and how many tokens it consumed (after truncation).</summary>
public sealed record ModelOutput<TResult>(TResult[] Results, int Tokens);

/// <summary>
/// A model behind a <see cref="DynamicBatcher{TItem,TResult}"/>: checks each input against the model's window
/// (413 naming the input, unless truncation is asked for), queues the inputs with their token counts as batch
/// cost, and records per-model metrics.
/// </summary>
public sealed class BatchedModel<TItem, TResult> : IAsyncDisposable
{
    private readonly Func<TItem, int> _countTokens;
    private readonly DynamicBatcher<TItem, TResult> _batcher;
    private readonly ServerMetrics _metrics;

    /// <param name="id">The model id reported to clients and used as the metrics label.</param>
    /// <param name="maxInputTokens">The model window; longer inputs are refused or truncated.</param>
    /// <param name="countTokens">Tokens of one input before truncation, special tokens included.</param>
    /// <param name="run">The model itself: one result per input, in order.</param>
    public BatchedModel(string id, int maxInputTokens, Func<TItem, int> countTokens,
        DynamicBatcher<TItem, TResult>.BatchFunction run, BatcherOptions batching, ServerMetrics metrics, TimeProvider? time = null)
    {
        Id = id;
        MaxInputTokens = maxInputTokens;
        _countTokens = countTokens;
        _metrics = metrics;
        _batcher = new DynamicBatcher<TItem, TResult>(run, batching, report => metrics.RecordBatch(id, report), $"batcher:{id}", time);
        metrics.QueueDepth.Track(() => _batcher.QueuedItems, id);
        metrics.ExpectedQueueWait.Track(() => _batcher.ExpectedWait.TotalSeconds, id);
        metrics.Throughput.Track(() => _batcher.Throughput.CostPerSecond ?? 0, id);
    }

    public string Id { get; }
    public int MaxInputTokens { get; }
    public BatcherOptions Batching => _batcher.Options;

    /// <summary>How long a request queued now would wait before it starts (from the model's measured throughput).</summary>
    public TimeSpan ExpectedWait => _batcher.ExpectedWait;

    /// <summary>The model's measured throughput, which bounds its queue by expected wait.</summary>
    public ThroughputEstimate Throughput => _batcher.Throughput;

    /// <summary>
    /// Runs <paramref name="items"/> through the model. <paramref name="field"/> names them in errors
    /// (<c>inputs</c> → <c>inputs[3]</c>). With a <paramref name="deadline"/>, a request the model cannot finish in time is
    /// refused at once with <see cref="DeadlineException"/>, and one still queued when it passes is withdrawn with it.
    /// </summary>
    public async Task<ModelOutput<TResult>> RunAsync(IReadOnlyList<TItem> items, string field, bool truncate, CancellationToken cancellationToken,
        TimeSpan? deadline = null)
    {
        var costs = new int[items.Count];
        int total = 0;
        for (int i = 0; i < items.Count; i++)
        {
            int tokens = _countTokens(items[i]);
            if (tokens > MaxInputTokens && !truncate)
                throw ApiException.TooLarge(
                    $"'{field}[{i}]' is {tokens} tokens long, more than this model's {MaxInputTokens}; shorten it or send \"truncate\": true",
                    $"{field}[{i}]");
            costs[i] = Math.Min(tokens, MaxInputTokens);
            total += costs[i];
        }
        TResult[] results;
        using var timeout = deadline is not null ? CancellationTokenSource.CreateLinkedTokenSource(cancellationToken) : null;
        timeout?.CancelAfter(deadline!.Value);
        try
        {
            results = await _batcher.SubmitAsync(items, costs, timeout?.Token ?? cancellationToken, deadline);
        }
        catch (ObjectDisposedException) when (_batcher.IsClosed)
        {
            throw ApiException.Unavailable("the server is shutting down");
        }
        catch (QueueFullException full)
        {
            _metrics.Rejections.Increment(1, Id, "overloaded");
            throw ApiException.Overloaded($"{Id}: {full.Message}; retry after the Retry-After seconds", RetryAfter(full.ExpectedWait));
        }
        catch (DeadlineException late)
        {
            _metrics.Rejections.Increment(1, Id, "deadline");
            throw ApiException.DeadlineUnmet($"{Id}: {late.Message}", RetryAfter(late.ExpectedWait));
        }
        catch (OperationCanceledException) when (timeout is { IsCancellationRequested: true } && !cancellationToken.IsCancellationRequested)
        {
            _metrics.Rejections.Increment(1, Id, "deadline");
            throw ApiException.DeadlineUnmet($"{Id}: the request's {deadline!.Value.TotalMilliseconds:F0} ms passed while it waited for the model",
                RetryAfter(_batcher.ExpectedWait));
        }
        _metrics.Inputs.Increment(items.Count, Id);
        _metrics.Tokens.Increment(total, Id);
        return new ModelOutput<TResult>(results, total);
    }

    /// <summary>Whole seconds of an expected wait, at least 1 (Retry-After has no finer unit).</summary>
    private static int RetryAfter(TimeSpan wait) => (int)Math.Clamp(Math.Ceiling(wait.TotalSeconds), 1, 3600);

    public ValueTask DisposeAsync() => _batcher.DisposeAsync();
}
