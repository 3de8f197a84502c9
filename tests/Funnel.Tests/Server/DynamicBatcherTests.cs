using System.Collections.Concurrent;
using Funnel.Server.Batching;

namespace Funnel.Tests.Server;

public class DynamicBatcherTests
{
    /// <summary>A real batch function: squares its inputs and records the batch it saw.</summary>
    private sealed class RecordingSquare
    {
        public ConcurrentQueue<int[]> Batches { get; } = new();
        public ManualResetEventSlim Gate { get; } = new(initialState: true);

        public long[] Run(IReadOnlyList<int> items)
        {
            Gate.Wait(TimeSpan.FromSeconds(30));
            Batches.Enqueue([.. items]);
            return [.. items.Select(x => (long)x * x)];
        }
    }

    [Fact]
    public async Task ConcurrentRequestsCoalesceAndGetTheirOwnResultsInOrder()
    {
        var square = new RecordingSquare();
        var reports = new ConcurrentQueue<BatchReport>();
        await using var batcher = new DynamicBatcher<int, long>(square.Run,
            new BatcherOptions { MaxBatchItems = 64, MaxBatchCost = 1_000_000, MaxWait = TimeSpan.FromMilliseconds(50) }, reports.Enqueue);

        // Hold the worker on a first request so the 40 that follow queue up together.
        square.Gate.Reset();
        Task<long[]> first = batcher.SubmitAsync([1], [1]);
        SpinWait.SpinUntil(() => batcher.QueuedItems == 0, TimeSpan.FromSeconds(5));
        var requests = Enumerable.Range(0, 40)
            .Select(r => Enumerable.Range(r * 10, 1 + r % 3).ToArray())
            .ToArray();
        Task<long[]>[] pending = requests.Select(items => batcher.SubmitAsync(items, items.Select(_ => 1).ToArray())).ToArray();
        square.Gate.Set();

        Assert.Equal(new long[] { 1L }, await first);
        for (int r = 0; r < requests.Length; r++)
            Assert.Equal(requests[r].Select(x => (long)x * x), await pending[r]);

        int queuedItems = requests.Sum(r => r.Length);
        int[][] batches = [.. square.Batches];
        Assert.Equal(1 + queuedItems, batches.Sum(b => b.Length));
        // 79 queued items with a 64-item limit: exactly two batches after the first, the first of them full.
        Assert.Equal(3, batches.Length);
        Assert.Equal(64, batches[1].Length);
        Assert.All(reports, r => Assert.False(r.Failed));
        Assert.True(reports.Max(r => r.Requests) >= 20);
    }

    [Fact]
    public async Task BatchesRespectTheCostBudgetAndKeepFifoOrder()
    {
        var square = new RecordingSquare();
        var reports = new ConcurrentQueue<BatchReport>();
        await using var batcher = new DynamicBatcher<int, long>(square.Run,
            new BatcherOptions { MaxBatchItems = 100, MaxBatchCost = 10, MaxWait = TimeSpan.FromMilliseconds(20) }, reports.Enqueue);
        square.Gate.Reset();
        Task<long[]> blocker = batcher.SubmitAsync([0], [1]);
        SpinWait.SpinUntil(() => batcher.QueuedItems == 0, TimeSpan.FromSeconds(5));
        // Costs 4,4,4 then 20 (over budget alone) then 3,3.
        Task<long[]> a = batcher.SubmitAsync([1, 2, 3], [4, 4, 4]);
        Task<long[]> b = batcher.SubmitAsync([4], [20]);
        Task<long[]> c = batcher.SubmitAsync([5, 6], [3, 3]);
        square.Gate.Set();
        await blocker;
        Assert.Equal(new long[] { 1, 4, 9 }, await a);
        Assert.Equal(new long[] { 16 }, await b);
        Assert.Equal(new long[] { 25, 36 }, await c);
        int[][] batches = [.. square.Batches];
        Assert.Equal([[0], [1, 2], [3], [4], [5, 6]], batches);
        Assert.Equal([1, 8, 4, 20, 6], reports.Select(r => r.Cost));
    }

    [Fact]
    public async Task AFullQueueRefusesAtOnce()
    {
        var square = new RecordingSquare();
        await using var batcher = new DynamicBatcher<int, long>(square.Run,
            new BatcherOptions { MaxBatchItems = 2, MaxQueuedItems = 3, MaxWait = TimeSpan.Zero });
        square.Gate.Reset();
        Task<long[]> running = batcher.SubmitAsync([1], [1]);
        SpinWait.SpinUntil(() => batcher.QueuedItems == 0, TimeSpan.FromSeconds(5));
        Task<long[]> queued = batcher.SubmitAsync([2, 3], [1, 1]);

        var full = Assert.Throws<QueueFullException>(() => { _ = batcher.SubmitAsync([4, 5], [1, 1]); });
        Assert.Equal(2, full.Queued);
        Assert.Equal(3, full.Capacity);
        Task<long[]> fits = batcher.SubmitAsync([6], [1]);

        square.Gate.Set();
        Assert.Equal(new long[] { 1L }, await running);
        Assert.Equal(new long[] { 4L, 9 }, await queued);
        Assert.Equal(new long[] { 36L }, await fits);
    }

    [Fact]
    public async Task AFailingBatchFailsOnlyItsRequests()
    {
        await using var batcher = new DynamicBatcher<int, int>(items => items.Contains(13)
                ? throw new InvalidOperationException("unlucky")
                : [.. items],
            new BatcherOptions { MaxBatchItems = 1, MaxWait = TimeSpan.Zero });
        Task<int[]> bad = batcher.SubmitAsync([1, 13, 2], [1, 1, 1]);
        Task<int[]> good = batcher.SubmitAsync([7], [1]);
        var ex = await Assert.ThrowsAsync<InvalidOperationException>(() => bad);
        Assert.Equal("unlucky", ex.Message);
        Assert.Equal(new int[] { 7 }, await good);
    }

    [Fact]
    public async Task CancelledRequestsAreSkippedAndOthersStillRun()
    {
        var square = new RecordingSquare();
        await using var batcher = new DynamicBatcher<int, long>(square.Run, new BatcherOptions { MaxWait = TimeSpan.Zero });
        square.Gate.Reset();
        Task<long[]> running = batcher.SubmitAsync([1], [1]);
        SpinWait.SpinUntil(() => batcher.QueuedItems == 0, TimeSpan.FromSeconds(5));
        using var cancel = new CancellationTokenSource();
        Task<long[]> abandoned = batcher.SubmitAsync([99, 98], [1, 1], cancel.Token);
        Task<long[]> kept = batcher.SubmitAsync([3], [1]);
        cancel.Cancel();
        square.Gate.Set();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => abandoned);
        Assert.Equal(new long[] { 9L }, await kept);
        await running;
        Assert.DoesNotContain(square.Batches, b => b.Contains(99) || b.Contains(98));
    }

    [Fact]
    public async Task DisposeDrainsAcceptedWorkThenRefusesNewWork()
    {
        var square = new RecordingSquare();
        var batcher = new DynamicBatcher<int, long>(square.Run,
            new BatcherOptions { MaxBatchItems = 4, MaxWait = TimeSpan.FromSeconds(10) });
        // A long MaxWait: these would sit in the queue, but shutdown runs them at once.
        Task<long[]> a = batcher.SubmitAsync([2], [1]);
        Task<long[]> b = batcher.SubmitAsync([3, 4], [1, 1]);
        ValueTask disposing = batcher.DisposeAsync();
        await disposing.AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(new long[] { 4L }, await a);
        Assert.Equal(new long[] { 9L, 16 }, await b);
        Assert.Throws<ObjectDisposedException>(() => { _ = batcher.SubmitAsync([5], [1]); });
    }

    [Fact]
    public async Task ALoneRequestWaitsAtMostMaxWait()
    {
        var square = new RecordingSquare();
        var reports = new ConcurrentQueue<BatchReport>();
        await using var batcher = new DynamicBatcher<int, long>(square.Run,
            new BatcherOptions { MaxBatchItems = 1000, MaxWait = TimeSpan.FromMilliseconds(30) }, reports.Enqueue);
        Assert.Equal(new long[] { 4L }, await batcher.SubmitAsync([2], [1]).WaitAsync(TimeSpan.FromSeconds(5)));
        BatchReport report = Assert.Single(reports);
        Assert.InRange(report.OldestWait, TimeSpan.FromMilliseconds(25), TimeSpan.FromSeconds(2));
    }

    [Fact]
    public void OptionsAreValidated()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new DynamicBatcher<int, int>(i => [.. i], new BatcherOptions { MaxBatchItems = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new DynamicBatcher<int, int>(i => [.. i], new BatcherOptions { MaxWait = TimeSpan.FromSeconds(-1) }));
    }
}
