using System.Net;
using System.Text.Json;
using Funnel.Inference;
using Funnel.Server;
using Funnel.Server.Batching;
using Funnel.Server.Http;
using Funnel.Server.Metrics;
using Funnel.Server.Models;
using Microsoft.Extensions.DependencyInjection;

namespace Funnel.Tests.Server;

/// <summary>
/// Issue 11, reliability defect 10: a model's queue is bounded by expected wait (from measured throughput), not by items,
/// so overload turns into 429s with a truthful Retry-After instead of minutes of latency; deadlines are per request.
/// Driven by a deliberately slow fake model on a fake clock: every item "takes" one second of the clock, so the
/// measured throughput is exactly 10 tokens/s and nothing depends on how fast this machine is.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class OverloadTests(SmallModels models)
{
    /// <summary>A clock that moves only when the fake model says so.</summary>
    private sealed class FakeClock : TimeProvider
    {
        private long _ticks;
        public override long TimestampFrequency => TimeSpan.TicksPerSecond;
        public override long GetTimestamp() => Interlocked.Read(ref _ticks);
        public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);
    }

    /// <summary>One second of the fake clock per item; blocks while <see cref="Gate"/> is closed, to hold work in the queue.</summary>
    private sealed class SlowModel(FakeClock clock)
    {
        public ManualResetEventSlim Gate { get; } = new(initialState: true);

        public int[] Run(IReadOnlyList<int> items)
        {
            Gate.Wait(TimeSpan.FromSeconds(30));
            clock.Advance(TimeSpan.FromSeconds(items.Count));
            return [.. items.Select(x => -x)];
        }
    }

    private const int Cost = 10; // tokens per item

    private static BatcherOptions Options => new() { MaxBatchItems = 1, MaxWait = TimeSpan.Zero, MaxQueueWait = TimeSpan.FromSeconds(3) };

    [Fact]
    public async Task Defect10_TheBatcherBoundsItsQueueByExpectedWaitFromMeasuredThroughput()
    {
        var clock = new FakeClock();
        var model = new SlowModel(clock);
        await using var batcher = new DynamicBatcher<int, int>(model.Run, Options, time: clock);
        Assert.Null(batcher.Throughput.CostPerSecond);
        Assert.Equal(new[] { -1 }, await batcher.SubmitAsync([1], [Cost])); // measures 10 tokens in 1 s
        Assert.Equal(10, batcher.Throughput.CostPerSecond!.Value, 9);
        Assert.Equal(1, batcher.Throughput.ItemsPerSecond!.Value, 9);

        model.Gate.Reset();
        Task<int[]> running = batcher.SubmitAsync([2], [Cost]);
        Assert.True(SpinWait.SpinUntil(() => batcher.QueuedItems == 0, TimeSpan.FromSeconds(10)));
        Assert.Equal(TimeSpan.FromSeconds(1), batcher.ExpectedWait); // the running item
        Task<int[]> two = batcher.SubmitAsync([3, 4], [Cost, Cost]);   // waits 1 s: queued
        Task<int[]> third = batcher.SubmitAsync([5], [Cost]);         // waits 3 s, the bound: queued
        Assert.Equal(TimeSpan.FromSeconds(4), batcher.ExpectedWait);

        var refused = Assert.Throws<QueueFullException>(() => { _ = batcher.SubmitAsync([6], [Cost]); }); // would wait 4 s
        Assert.Equal(TimeSpan.FromSeconds(4), refused.ExpectedWait);
        Assert.Contains("expected to take 4.0 s, more than the 3 s", refused.Message);
        Assert.Equal(3, refused.Queued);

        model.Gate.Set();
        Assert.Equal(new[] { -2 }, await running);
        Assert.Equal(new[] { -3, -4 }, await two);
        Assert.Equal(new[] { -5 }, await third);
        Assert.Equal(TimeSpan.Zero, batcher.ExpectedWait);
        // An idle model takes any request, however long it will run.
        Assert.Equal(100, (await batcher.SubmitAsync([.. Enumerable.Range(0, 100)], [.. Enumerable.Repeat(Cost, 100)])).Length);
    }

    [Fact]
    public async Task Defect10_ARequestThatWouldMissItsDeadlineIsRefusedBeforeItQueues()
    {
        var clock = new FakeClock();
        var model = new SlowModel(clock);
        await using var batcher = new DynamicBatcher<int, int>(model.Run, Options, time: clock);
        await batcher.SubmitAsync([1], [Cost]);
        model.Gate.Reset();
        Task<int[]> running = batcher.SubmitAsync([2], [Cost]);
        Assert.True(SpinWait.SpinUntil(() => batcher.QueuedItems == 0, TimeSpan.FromSeconds(10)));

        // 1 s of work ahead and 2 s of its own: 3 s.
        var late = Assert.Throws<DeadlineException>(() => { _ = batcher.SubmitAsync([3, 4], [Cost, Cost], deadline: TimeSpan.FromSeconds(2.5)); });
        Assert.Contains("about 3000 ms", late.Message);
        Assert.Equal(0, batcher.QueuedItems);
        Task<int[]> inTime = batcher.SubmitAsync([3, 4], [Cost, Cost], deadline: TimeSpan.FromSeconds(3));
        model.Gate.Set();
        Assert.Equal(new[] { -3, -4 }, await inTime);
        await running;
    }

    [Fact]
    public async Task Defect10_OverloadIsA429WithTheRealWaitAndShowsInMetrics()
    {
        var clock = new FakeClock();
        var slow = new SlowModel(clock);
        using var metrics = new ServerMetrics();
        using var readings = new MeterReadings(metrics.Meter);
        // Each item is a token sequence of Cost tokens holding its number; the model sees the numbers.
        await using var model = new BatchedModel<int>("slow", inputs => slow.Run([.. inputs.Select(t => t.Ids[0])]), Options, metrics, clock);
        static TokenSequence[] Items(params int[] numbers) => [.. numbers.Select(n => new TokenSequence(Enumerable.Repeat(n, Cost).ToArray(), new int[Cost]))];
        await model.RunAsync(Items(1), CancellationToken.None);
        slow.Gate.Reset();
        Task<(int[], long)> running = model.RunAsync(Items(2), CancellationToken.None);
        // Wait until item 2 is running, not queued: the expected wait is 1 s either way, the queue depth is not.
        Assert.True(SpinWait.SpinUntil(() => Http.Metric(readings.Render(), "funnel_batch_queue_depth{model=\"slow\"}") == 0, TimeSpan.FromSeconds(10)));
        Assert.Equal(TimeSpan.FromSeconds(1), model.ExpectedWait);
        Task<(int[], long)> queued = model.RunAsync(Items(3, 4, 5, 6, 7), CancellationToken.None); // 6 s of work ahead now

        // A model that cannot take the call now says so in the library's terms; the service maps it to 429 / 503 with Retry-After.
        var overloaded = await Assert.ThrowsAsync<ModelUnavailableException>(() => model.RunAsync(Items(8), CancellationToken.None));
        Assert.Equal(ModelUnavailableReason.Overloaded, overloaded.Reason);
        Assert.Equal(TimeSpan.FromSeconds(6), overloaded.RetryAfter);
        Assert.Contains("slow: the model is overloaded", overloaded.Message);
        var late = await Assert.ThrowsAsync<ModelUnavailableException>(() => model.RunAsync(Items(9), CancellationToken.None, TimeSpan.FromSeconds(1)));
        Assert.Equal(ModelUnavailableReason.Overloaded, late.Reason); // the queue bound comes first

        string text = readings.Render();
        Assert.Equal(6, Http.Metric(text, "funnel_batch_queue_expected_wait_seconds{model=\"slow\"}"));
        Assert.Equal(10, Http.Metric(text, "funnel_model_throughput_tokens_per_second{model=\"slow\"}"));
        Assert.Equal(5, Http.Metric(text, "funnel_batch_queue_depth{model=\"slow\"}"));
        Assert.Equal(2, Http.Metric(text, "funnel_batch_rejections_total{model=\"slow\",reason=\"overloaded\"}"));
        slow.Gate.Set();
        Assert.Equal(new[] { -2 }, (await running).Item1);
        Assert.Equal(new[] { -3, -4, -5, -6, -7 }, (await queued).Item1);
        Assert.True(Http.Metric(readings.Render(), "funnel_batch_queue_wait_seconds_count{model=\"slow\"}") >= 3); // batches 1, 2, then 3-7
    }

    [Fact]
    public async Task Defect10_OverHttpOverloadIsA429WhoseRetryAfterIsTheExpectedWait()
    {
        var options = new ServerOptions
        {
            EmbedBatching = new BatcherOptions { MaxBatchItems = 64, MaxWait = TimeSpan.FromSeconds(3), MaxQueueWait = TimeSpan.FromSeconds(2) },
        };
        await using RunningServer server = await RunningServer.StartAsync(models.Both, options);
        BatchingEmbeddingGenerator embedder = server.App.Services.GetRequiredService<ServedModels>().Embedder!;
        embedder.Throughput.Observe(1, 1, TimeSpan.FromSeconds(1)); // as if it had measured 1 token/s

        // Two inputs of 3 tokens each ([CLS] word [SEP]) wait 3 s for company: 6 s of work at 1 token/s.
        Task<Reply> waiting = server.Client.PostAsync("/embed", new { inputs = new[] { "first", "second" } });
        await Http.WaitForQueueDepthAsync(server.Client, "test/bi-small", 2);
        Reply refused = await server.Client.PostAsync("/embed", new { inputs = "third" });
        Http.AssertProblem(refused, HttpStatusCode.TooManyRequests, mentions: "expected to take 6.0 s");
        Assert.Equal(TimeSpan.FromSeconds(6), refused.Message.Headers.RetryAfter?.Delta);
        string metrics = (await server.Client.GetReplyAsync("/metrics")).Text;
        Assert.Equal(6, Http.Metric(metrics, "funnel_batch_queue_expected_wait_seconds{model=\"test/bi-small\"}"));
        Assert.Equal(1, Http.Metric(metrics, "funnel_batch_rejections_total{model=\"test/bi-small\",reason=\"overloaded\"}"));
        Assert.Equal(HttpStatusCode.OK, (await waiting).Status);
    }

    [Fact]
    public async Task Defect10_ASearchWhoseRerankWouldMissItsDeadlineFallsBackToRetrievalWhenAskedAndSaysSo()
    {
        string root = Path.Combine(Path.GetTempPath(), $"funnel-overload-{Guid.NewGuid():N}");
        try
        {
            await using RunningServer server = await RunningServer.StartAsync(models.Both, new ServerOptions { CollectionsDirectory = root });
            Assert.Equal(HttpStatusCode.Created, (await server.Client.PostAsync("/collections", new { name = "c", index = "flat" })).Status);
            var docs = Enumerable.Range(0, 5).Select(i => new { id = $"d{i}", text = $"berlin document number {i}" }).ToArray();
            Assert.Equal(HttpStatusCode.OK, (await server.Client.PostAsync("/collections/c/documents", new { documents = docs })).Status);

            // The cross-encoder has measured itself as very slow (0.01 tokens/s): any rerank would take hours.
            BatchingReranker reranker = server.App.Services.GetRequiredService<ServedModels>().Reranker!;
            reranker.Throughput.Observe(1, 1, TimeSpan.FromSeconds(100));

            object Search(bool fallback) => fallback
                ? new { query = "berlin", retriever = "bm25", rerank = true, top_k = 3, timeout_ms = 60_000, rerank_fallback = true }
                : new { query = "berlin", retriever = "bm25", rerank = true, top_k = 3, timeout_ms = 60_000, rerank_fallback = false };
            Reply refused = await server.Client.PostAsync("/collections/c/search", Search(fallback: false));
            JsonElement problem = Http.AssertProblem(refused, HttpStatusCode.ServiceUnavailable, mentions: "more than its");
            Assert.True(refused.Message.Headers.RetryAfter?.Delta >= TimeSpan.FromSeconds(1));
            Assert.Equal("Overloaded", problem.GetProperty("error_type").GetString());

            Reply degraded = await server.Client.PostAsync("/collections/c/search", Search(fallback: true));
            Assert.Equal(HttpStatusCode.OK, degraded.Status);
            Assert.False(degraded.Json.GetProperty("reranked").GetBoolean());
            Assert.Contains("more than its", degraded.Json.GetProperty("fallback_reason").GetString());
            JsonElement[] results = [.. degraded.Json.GetProperty("results").EnumerateArray()];
            Assert.Equal(3, results.Length);
            Assert.All(results, r => Assert.False(r.TryGetProperty("rerank_score", out _)));
            Assert.Equal([1, 2, 3], results.Select(r => r.GetProperty("rank").GetInt32()));

            // No deadline, no fallback: the rerank runs however long it takes, and the response carries no flag.
            Reply normal = await server.Client.PostAsync("/collections/c/search", new { query = "berlin", retriever = "bm25", rerank = true, top_k = 3 });
            Assert.Equal(HttpStatusCode.OK, normal.Status);
            Assert.False(normal.Json.TryGetProperty("reranked", out _));
            Http.AssertProblem(await server.Client.PostAsync("/collections/c/search", new { query = "berlin", rerank_fallback = true }), HttpStatusCode.BadRequest, "rerank_fallback");
        }
        finally
        {
            if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        }
    }
}
