using System.Net;
using Funnel.Server;
using Funnel.Server.Batching;

namespace Funnel.Tests.Server;

/// <summary>Many clients at once: correct, input-ordered answers, real coalescing, back-pressure and a graceful stop.</summary>
[Collection(ServerCollection.Name)]
public sealed class ConcurrencyTests(SmallModels models)
{
    private const string Model = "test/bi-small";

    [Fact]
    public async Task ParallelClientsGetTheirOwnOrderedResultsFromSharedBatches()
    {
        var options = new ServerOptions { EmbedBatching = new BatcherOptions { MaxBatchItems = 64, MaxWait = TimeSpan.FromMilliseconds(50) } };
        await using RunningServer server = await RunningServer.StartAsync(models.Both, options);

        const int clients = 24;
        string[][] requests = [.. Enumerable.Range(0, clients).Select(c =>
            Enumerable.Range(0, 1 + c % 4).Select(i => $"client {c} asks question number {i} about {new string('x', c % 7)}").ToArray())];
        using var start = new SemaphoreSlim(0);
        Task<Reply>[] calls = [.. requests.Select(async texts =>
        {
            await start.WaitAsync();
            return await server.Client.PostAsync("/embed", new { inputs = texts });
        })];
        start.Release(clients);
        Reply[] replies = await Task.WhenAll(calls);

        for (int c = 0; c < clients; c++)
        {
            Assert.Equal(HttpStatusCode.OK, replies[c].Status);
            float[][] expected = models.BiEncoder.Encode(requests[c]);
            float[][] actual = [.. replies[c].Json.EnumerateArray().Select(Http.Floats)];
            Assert.Equal(expected.Length, actual.Length);
            for (int i = 0; i < expected.Length; i++)
                for (int d = 0; d < expected[i].Length; d++) Assert.Equal(expected[i][d], actual[i][d], 1e-6f);
        }

        string metrics = (await server.Client.GetReplyAsync("/metrics")).Text;
        int items = requests.Sum(r => r.Length);
        double batches = Http.Metric(metrics, $"funnel_batch_size_count{{model=\"{Model}\"}}");
        Assert.Equal(items, Http.Metric(metrics, $"funnel_batch_size_sum{{model=\"{Model}\"}}"));
        Assert.Equal(items, Http.Metric(metrics, $"funnel_inputs_total{{model=\"{Model}\"}}"));
        Assert.True(batches < clients, $"{clients} concurrent requests ran in {batches} batches: nothing was coalesced");
        double singleRequestBatches = Http.Metric(metrics, $"funnel_batch_requests_bucket{{model=\"{Model}\",le=\"1\"}}");
        Assert.True(singleRequestBatches < batches, "no batch held items of more than one request");
    }

    [Fact]
    public async Task AFullQueueAnswers429WithRetryAfter()
    {
        var options = new ServerOptions
        {
            MaxInputsPerRequest = 2,
            EmbedBatching = new BatcherOptions { MaxQueuedItems = 2, MaxBatchItems = 64, MaxWait = TimeSpan.FromSeconds(3) },
        };
        await using RunningServer server = await RunningServer.StartAsync(models.Both, options);

        // Two items wait three seconds for company, filling the queue meanwhile.
        Task<Reply> waiting = server.Client.PostAsync("/embed", new { inputs = new[] { "first", "second" } });
        await Http.WaitForQueueDepthAsync(server.Client, Model, 2);
        Reply refused = await server.Client.PostAsync("/embed", new { inputs = "third" });
        Http.AssertProblem(refused, HttpStatusCode.TooManyRequests, mentions: "queue is full");
        Assert.Equal(TimeSpan.FromSeconds(1), refused.Message.Headers.RetryAfter?.Delta);
        Assert.Equal("Overloaded", refused.Json.GetProperty("error_type").GetString());

        Assert.Equal(HttpStatusCode.OK, (await waiting).Status);
        Assert.Equal(HttpStatusCode.OK, (await server.Client.PostAsync("/embed", new { inputs = "third" })).Status);
        string metrics = (await server.Client.GetReplyAsync("/metrics")).Text;
        Assert.Equal(1, Http.Metric(metrics, "funnel_http_requests_total{route=\"/embed\",method=\"POST\",status=\"429\"}"));
    }

    [Fact]
    public async Task StoppingFinishesAcceptedRequests()
    {
        var options = new ServerOptions { EmbedBatching = new BatcherOptions { MaxBatchItems = 64, MaxWait = TimeSpan.FromSeconds(2) } };
        RunningServer server = await RunningServer.StartAsync(models.Both, options);
        string[] texts = ["in flight when the server stops", "and its neighbour"];
        Task<Reply> inFlight = server.Client.PostAsync("/embed", new { inputs = texts });
        await Http.WaitForQueueDepthAsync(server.Client, Model, 2);

        Task stopping = server.App.StopAsync();
        Reply reply = await inFlight;
        await stopping;

        Assert.Equal(HttpStatusCode.OK, reply.Status);
        float[][] expected = models.BiEncoder.Encode(texts);
        float[] first = Http.Floats(reply.Json[0]);
        for (int d = 0; d < first.Length; d++) Assert.Equal(expected[0][d], first[d], 1e-6f);
        await Assert.ThrowsAsync<HttpRequestException>(() => server.Client.PostAsync("/embed", new { inputs = "too late" }));
        await server.DisposeAsync();
    }
}
