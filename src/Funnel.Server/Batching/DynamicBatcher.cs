
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

    /// <summary>
    /// Longest a new request's items may expect to wait before they start, estimated from the queued (and running) work
    /// and the model's measured throughput; beyond it the request is refused with <see cref="QueueFullException"/>. An
    /// item count alone bounds nothing useful: 16,384 queued pairs are minutes of a cross-encoder's work.
    /// </summary>
    public TimeSpan MaxQueueWait { get; init; } = TimeSpan.FromSeconds(2);

    internal void Validate()
    {
        if (MaxBatchItems < 1) throw new ArgumentOutOfRangeException(nameof(MaxBatchItems), MaxBatchItems, "must be at least 1");
        if (MaxBatchCost < 1) throw new ArgumentOutOfRangeException(nameof(MaxBatchCost), MaxBatchCost, "must be at least 1");
        if (MaxWait < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(MaxWait), MaxWait, "must not be negative");
        if (MaxQueuedItems < 1) throw new ArgumentOutOfRangeException(nameof(MaxQueuedItems), MaxQueuedItems, "must be at least 1");
        if (MaxQueueWait <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(MaxQueueWait), MaxQueueWait, "must be positive");
    }
}

/// <summary>The queue cannot take a request's items now; the client should retry after <see cref="ExpectedWait"/>.</summary>
internal sealed class QueueFullException(string message, int queued, int requested, int capacity, TimeSpan expectedWait) : FunnelException(FunnelErrorKind.Overloaded, message)
{
    public int Queued { get; } = queued;
    public int Requested { get; } = requested;

    /// <summary>Most items the queue holds (<see cref="BatcherOptions.MaxQueuedItems"/>).</summary>
    public int Capacity { get; } = capacity;

    /// <summary>How long the work queued now is expected to take (at least a second when unknown).</summary>
    public TimeSpan ExpectedWait { get; } = expectedWait;
}

/// <summary>A request's deadline cannot be met: its expected wait and run time exceed it, or it passed while queued.</summary>
internal sealed class DeadlineException(string message, TimeSpan expectedWait) : FunnelException(FunnelErrorKind.DeadlineUnmet, message)
{
    /// <summary>How long the work queued now is expected to take.</summary>
    public TimeSpan ExpectedWait { get; } = expectedWait;
}

/// <summary>What one executed batch looked like, for metrics.</summary>
internal readonly record struct BatchReport(int Items, int Cost, int Requests, TimeSpan OldestWait, TimeSpan Duration, bool Failed);

/// <summary>
/// Coalesces the items of concurrent requests into batches bounded by item count and cost (tokens),
/// runs each batch on one worker thread, and completes every request with its own results in input order.
/// A batch runs as soon as it is full or its oldest item has waited <see cref="BatcherOptions.MaxWait"/>; under
/// load items have already waited that long, so the worker never idles while work is queued.
/// </summary>
internal sealed class DynamicBatcher<TItem, TResult> : IAsyncDisposable
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
    private readonly TimeProvider _time;
    private long _queuedCost;
    private long _runningCost;
    private bool _closed;

    /// <param name="time">The clock for waits and batch durations (tests drive a fake one; batch durations feed <see cref="Throughput"/>).</param>
    public DynamicBatcher(BatchFunction run, BatcherOptions options, Action<BatchReport>? onBatch = null, string name = "batcher", TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _run = run;
        _options = options;
        _onBatch = onBatch;
        _time = time ?? TimeProvider.System;
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

    /// <summary>The model's measured throughput, from the batches run so far.</summary>
    public ThroughputEstimate Throughput { get; } = new();

    /// <summary>How long a request queued now would wait before its items start: the queued and running work at <see cref="Throughput"/>.</summary>
    public TimeSpan ExpectedWait
    {
        get { lock (_gate) return Throughput.TimeFor(_queuedCost + _runningCost); }
    }

    /// <summary>
    /// Queues <paramref name="items"/> (with their <paramref name="costs"/>, e.g. token counts) and completes with
    /// their results in the same order. Throws <see cref="QueueFullException"/> at once when they do not fit (too many items
    /// queued, or more than <see cref="BatcherOptions.MaxQueueWait"/> of work ahead of them), <see cref="DeadlineException"/>
    /// when the expected wait and run time exceed <paramref name="deadline"/>, and <see cref="ObjectDisposedException"/> after
    /// shutdown began. Cancelling drops the items not yet started.
    /// </summary>
    public Task<TResult[]> SubmitAsync(IReadOnlyList<TItem> items, IReadOnlyList<int> costs, CancellationToken cancellationToken = default, TimeSpan? deadline = null)
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
            TimeSpan wait = Throughput.TimeFor(_queuedCost + _runningCost);
            if (_queue.Count + items.Count > _options.MaxQueuedItems)
                throw new QueueFullException($"the batch queue is full ({_queue.Count} items queued, {items.Count} requested, capacity {_options.MaxQueuedItems})",
                    _queue.Count, items.Count, _options.MaxQueuedItems, wait);
            // An idle model takes any request, however large: it is refused only behind work that would keep it waiting.
            if (wait > _options.MaxQueueWait)
                throw new QueueFullException($"the model is overloaded: its queued work is expected to take {wait.TotalSeconds:F1} s, more than the {_options.MaxQueueWait.TotalSeconds:0.###} s this server queues",
                    _queue.Count, items.Count, _options.MaxQueuedItems, wait);
            if (deadline is { } limit)
            {
                long own = 0;
                foreach (int cost in costs) own += Math.Max(cost, 1);
                TimeSpan expected = wait + Throughput.TimeFor(own);
                if (expected > limit)
                    throw new DeadlineException($"the model would take about {expected.TotalMilliseconds:F0} ms for this request (queue and run), more than its {limit.TotalMilliseconds:F0} ms", wait);
            }
            // Registered under the lock so a completion can never race ahead of the registration it must dispose.
            if (cancellationToken.CanBeCanceled)
                request.Registration = cancellationToken.Register(static state => ((Request)state!).Cancel(), request);
            long now = _time.GetTimestamp();
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
                TimeSpan waited = _time.GetElapsedTime(_queue.Peek().EnqueuedAt);
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
            _runningCost = cost;
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
        if (batch.Count == 0)
        {
            lock (_gate) _runningCost = 0;
            return;
        }
        var items = new TItem[batch.Count];
        int cost = 0;
        var requests = new HashSet<Request>();
        for (int i = 0; i < batch.Count; i++)
        {
            items[i] = batch[i].Item;
            cost += batch[i].Cost;
            requests.Add(batch[i].Request);
        }
        TimeSpan oldestWait = _time.GetElapsedTime(batch.Min(s => s.EnqueuedAt));
        long start = _time.GetTimestamp();
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
        TimeSpan duration = _time.GetElapsedTime(start);
        if (error is null) Throughput.Observe(batch.Count, cost, duration);
        lock (_gate) _runningCost = 0;
        // Reported before anyone is answered, so a client that reads the metrics after its reply sees its batch.
        _onBatch?.Invoke(new BatchReport(batch.Count, cost, requests.Count, oldestWait, duration, error is not null));
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
