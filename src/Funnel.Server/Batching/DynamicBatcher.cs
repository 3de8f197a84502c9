using System.Diagnostics;

namespace Funnel.Server.Batching;

/// <summary>Limits of a <see cref="DynamicBatcher{TItem,TResult}"/>.</summary>
public sealed record BatcherOptions
{
    /// <summary>Most items in one batch.</summary>
    public int MaxBatchItems { get; init; } = 32;

    /// <summary>Most cost (tokens) in one batch; a single item over it still runs, alone.</summary>
    public int MaxBatchCost { get; init; } = 16_384;

    /// <summary>How long the oldest queued item may wait for company before its batch runs anyway.</summary>
    public TimeSpan MaxWait { get; init; } = TimeSpan.FromMilliseconds(2);

    /// <summary>Most items waiting to run; a request that would exceed it is refused with <see cref="QueueFullException"/>.</summary>
    public int MaxQueuedItems { get; init; } = 16_384;

    internal void Validate()
    {
        if (MaxBatchItems < 1) throw new ArgumentOutOfRangeException(nameof(MaxBatchItems), MaxBatchItems, "must be at least 1");
        if (MaxBatchCost < 1) throw new ArgumentOutOfRangeException(nameof(MaxBatchCost), MaxBatchCost, "must be at least 1");
        if (MaxWait < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(MaxWait), MaxWait, "must not be negative");
        if (MaxQueuedItems < 1) throw new ArgumentOutOfRangeException(nameof(MaxQueuedItems), MaxQueuedItems, "must be at least 1");
    }
}

/// <summary>The queue cannot take a request's items now; the client should retry later.</summary>
public sealed class QueueFullException(int queued, int requested, int capacity)
    : Exception($"the batch queue is full ({queued} items queued, {requested} requested, capacity {capacity})")
{
    public int Queued { get; } = queued;
    public int Requested { get; } = requested;
    public int Capacity { get; } = capacity;
}

/// <summary>What one executed batch looked like, for metrics.</summary>
public readonly record struct BatchReport(int Items, int Cost, int Requests, TimeSpan OldestWait, TimeSpan Duration, bool Failed);

/// <summary>
/// Coalesces the items of concurrent requests into batches bounded by item count and cost (tokens),
/// runs each batch on one worker thread, and completes every request with its own results in input order.
/// A batch runs as soon as it is full or its oldest item has waited <see cref="BatcherOptions.MaxWait"/>; under
/// load items have already waited that long, so the worker never idles while work is queued.
/// </summary>
public sealed class DynamicBatcher<TItem, TResult> : IAsyncDisposable
{
    /// <summary>Runs one batch; must return one result per item, in order.</summary>
    public delegate TResult[] BatchFunction(IReadOnlyList<TItem> items);

    private readonly BatchFunction _run;
    private readonly BatcherOptions _options;
    private readonly Action<BatchReport>? _onBatch;
    private readonly object _gate = new();
    private readonly Queue<Slot> _queue = new();
    private readonly Thread _worker;
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _queuedCost;
    private bool _closed;

    public DynamicBatcher(BatchFunction run, BatcherOptions options, Action<BatchReport>? onBatch = null, string name = "batcher")
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _run = run;
        _options = options;
        _onBatch = onBatch;
        _worker = new Thread(WorkerLoop) { IsBackground = true, Name = name };
        _worker.Start();
    }

    public BatcherOptions Options => _options;

    /// <summary>Shutdown began: new requests are refused.</summary>
    public bool IsClosed
    {
        get { lock (_gate) return _closed; }
    }

    /// <summary>Items accepted and not yet started.</summary>
    public int QueuedItems
    {
        get { lock (_gate) return _queue.Count; }
    }

    /// <summary>
    /// Queues <paramref name="items"/> (with their <paramref name="costs"/>, e.g. token counts) and completes with
    /// their results in the same order. Throws <see cref="QueueFullException"/> at once when they do not fit, and
    /// <see cref="ObjectDisposedException"/> after shutdown began. Cancelling drops the items not yet started.
    /// </summary>
    public Task<TResult[]> SubmitAsync(IReadOnlyList<TItem> items, IReadOnlyList<int> costs, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(items);
        ArgumentNullException.ThrowIfNull(costs);
        if (costs.Count != items.Count) throw new ArgumentException($"{costs.Count} costs for {items.Count} items", nameof(costs));
        if (items.Count == 0) return Task.FromResult(Array.Empty<TResult>());
        cancellationToken.ThrowIfCancellationRequested();

        var request = new Request(items.Count);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_closed, this);
            if (_queue.Count + items.Count > _options.MaxQueuedItems)
                throw new QueueFullException(_queue.Count, items.Count, _options.MaxQueuedItems);
            // Registered under the lock so a completion can never race ahead of the registration it must dispose.
            if (cancellationToken.CanBeCanceled)
                request.Registration = cancellationToken.Register(static state => ((Request)state!).Cancel(), request);
            long now = Stopwatch.GetTimestamp();
            for (int i = 0; i < items.Count; i++)
            {
                _queue.Enqueue(new Slot(request, i, items[i], Math.Max(costs[i], 1), now));
                _queuedCost += Math.Max(costs[i], 1);
            }
            Monitor.PulseAll(_gate);
        }
        return request.Completion.Task;
    }

    /// <summary>Stops taking requests, runs everything already accepted, then stops the worker.</summary>
    public async ValueTask DisposeAsync()
    {
        lock (_gate)
        {
            _closed = true;
            Monitor.PulseAll(_gate);
        }
        await _stopped.Task.ConfigureAwait(false);
    }

    private void WorkerLoop()
    {
        try
        {
            while (TakeBatch() is { } batch)
                Execute(batch);
        }
        finally
        {
            _stopped.TrySetResult();
        }
    }

    /// <summary>Blocks until a batch is due; null once closed and drained.</summary>
    private List<Slot>? TakeBatch()
    {
        lock (_gate)
        {
            while (true)
            {
                DropCancelledHead();
                if (_queue.Count == 0)
                {
                    if (_closed) return null;
                    Monitor.Wait(_gate);
                    continue;
                }
                bool full = _queue.Count >= _options.MaxBatchItems || _queuedCost >= _options.MaxBatchCost;
                if (full || _closed) break;
                TimeSpan waited = Stopwatch.GetElapsedTime(_queue.Peek().EnqueuedAt);
                TimeSpan left = _options.MaxWait - waited;
                if (left <= TimeSpan.Zero) break;
                Monitor.Wait(_gate, left);
            }

            var batch = new List<Slot>(Math.Min(_queue.Count, _options.MaxBatchItems));
            int cost = 0;
            while (_queue.Count > 0 && batch.Count < _options.MaxBatchItems)
            {
                Slot next = _queue.Peek();
                if (batch.Count > 0 && cost + next.Cost > _options.MaxBatchCost) break;
                _queue.Dequeue();
                _queuedCost -= next.Cost;
                if (next.Request.IsFinished) continue;
                batch.Add(next);
                cost += next.Cost;
            }
            return batch;
        }
    }

    private void DropCancelledHead()
    {
        while (_queue.Count > 0 && _queue.Peek().Request.IsFinished)
            _queuedCost -= _queue.Dequeue().Cost;
    }

    private void Execute(List<Slot> batch)
    {
        if (batch.Count == 0) return;
        var items = new TItem[batch.Count];
        int cost = 0;
        var requests = new HashSet<Request>();
        for (int i = 0; i < batch.Count; i++)
        {
            items[i] = batch[i].Item;
            cost += batch[i].Cost;
            requests.Add(batch[i].Request);
        }
        TimeSpan oldestWait = Stopwatch.GetElapsedTime(batch.Min(s => s.EnqueuedAt));
        long start = Stopwatch.GetTimestamp();
        TResult[]? results = null;
        Exception? error = null;
        try
        {
            results = _run(items);
            if (results.Length != items.Length)
                throw new InvalidOperationException($"the batch function returned {results.Length} results for {items.Length} items");
        }
        catch (Exception ex)
        {
            error = ex;
        }
        // Reported before anyone is answered, so a client that reads the metrics after its reply sees its batch.
        _onBatch?.Invoke(new BatchReport(batch.Count, cost, requests.Count, oldestWait, Stopwatch.GetElapsedTime(start), error is not null));
        if (error is null)
            for (int i = 0; i < batch.Count; i++) batch[i].Request.Complete(batch[i].Index, results![i]);
        else
            foreach (Request request in requests) request.Fail(error);
    }

    private readonly record struct Slot(Request Request, int Index, TItem Item, int Cost, long EnqueuedAt);

    private sealed class Request(int count)
    {
        private readonly TResult[] _results = new TResult[count];
        private int _remaining = count;

        public TaskCompletionSource<TResult[]> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public CancellationTokenRegistration Registration { get; set; }
        public bool IsFinished => Completion.Task.IsCompleted;

        public void Complete(int index, TResult result)
        {
            _results[index] = result;
            if (Interlocked.Decrement(ref _remaining) == 0 && Completion.TrySetResult(_results))
                Registration.Dispose();
        }

        public void Fail(Exception ex)
        {
            if (Completion.TrySetException(ex)) Registration.Dispose();
        }

        public void Cancel() => Completion.TrySetCanceled();
    }
}
