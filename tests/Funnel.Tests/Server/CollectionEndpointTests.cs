using System.Net;
using System.Text.Json;
using Funnel.Retrieval;
using Funnel.Server;
using Funnel.Server.Collections;
using Funnel.Server.Http;
using Microsoft.AspNetCore.Http;

namespace Funnel.Tests.Server;

/// <summary>The collection routes, checked against the pipeline called directly on the same folder.</summary>
[Collection(ServerCollection.Name)]
public sealed class CollectionEndpointTests(SmallModels models) : IAsyncLifetime
{
    private static readonly (string Id, string Title, string Text, string Lang)[] Corpus =
    [
        ("berlin", "Berlin", "Berlin is the capital and largest city of Germany, with 3.5 million inhabitants.", "en"),
        ("paris", "Paris", "Paris is the capital of France and its most populous city.", "en"),
        ("museums", "Museums", "Berlin is well known for its museums on the Museum Island.", "en"),
        ("metoprolol", "Toprol", "Metoprolol succinate is also known by the brand name Toprol XL.", "en"),
        ("hamburg", "Hamburg", "Hamburg ist nach Berlin die zweitgrößte Stadt Deutschlands.", "de"),
        ("rivers", "Rivers", "The Spree flows through the centre of Berlin before it joins the Havel.", "en"),
    ];

    private readonly string _root = Path.Combine(Path.GetTempPath(), $"funnel-server-collections-{Guid.NewGuid():N}");
    private RunningServer _server = null!;

    public async Task InitializeAsync() =>
        _server = await RunningServer.StartAsync(models.Both, new ServerOptions { CollectionsDirectory = _root });

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }

    private static object Documents(IEnumerable<(string Id, string Title, string Text, string Lang)> documents) => new
    {
        documents = documents.Select(d => new { id = d.Id, title = d.Title, text = d.Text, metadata = new { lang = d.Lang } }).ToArray(),
    };

    private async Task CreateWithCorpusAsync(string name)
    {
        Reply created = await _server.Client.PostAsync("/collections", new { name, index = "flat" });
        Assert.Equal(HttpStatusCode.Created, created.Status);
        Reply written = await _server.Client.PostAsync($"/collections/{name}/documents", Documents(Corpus));
        Assert.Equal(HttpStatusCode.OK, written.Status);
        Assert.Equal(Corpus.Length, written.Json.GetProperty("written").GetInt32());
    }

    [Fact]
    public async Task CreateListDescribeAndDelete()
    {
        await CreateWithCorpusAsync("docs");
        Http.AssertProblem(await _server.Client.PostAsync("/collections", new { name = "docs" }), HttpStatusCode.Conflict, "name", "already exists");

        JsonElement list = (await _server.Client.GetReplyAsync("/collections")).Json;
        JsonElement only = Assert.Single(list.GetProperty("collections").EnumerateArray());
        Assert.Equal("docs", only.GetProperty("name").GetString());
        Assert.Equal(Corpus.Length, only.GetProperty("documents").GetInt32());

        JsonElement described = (await _server.Client.GetReplyAsync("/collections/docs")).Json;
        Assert.Equal("flat", described.GetProperty("vector_index").GetString());
        Assert.Equal(models.BiEncoder.Fingerprint.WeightsSha256, described.GetProperty("bi_encoder").GetProperty("weights_sha256").GetString());
        Assert.True(described.GetProperty("chunks").GetInt32() >= Corpus.Length);

        Reply deleted = await _server.Client.SendReplyAsync(new HttpRequestMessage(HttpMethod.Delete, "/collections/docs"));
        Assert.Equal(HttpStatusCode.NoContent, deleted.Status);
        Http.AssertProblem(await _server.Client.GetReplyAsync("/collections/docs"), HttpStatusCode.NotFound, mentions: "docs");
        Assert.False(Directory.Exists(Path.Combine(_root, "docs")));
        Assert.Empty((await _server.Client.GetReplyAsync("/collections")).Json.GetProperty("collections").EnumerateArray());
    }

    [Fact]
    public async Task OfConcurrentAddsOfOneIdOneIsWrittenAndTheOthersAre409()
    {
        Assert.Equal(HttpStatusCode.Created, (await _server.Client.PostAsync("/collections", new { name = "race", index = "flat" })).Status);
        Reply[] replies = await Task.WhenAll(Enumerable.Range(0, 8).Select(w =>
            _server.Client.PostAsync("/collections/race/documents", new { documents = new[] { new { id = "same", text = $"writer {w} about rivers" } } })));
        Assert.Single(replies, r => r.Status == HttpStatusCode.OK);
        Assert.All(replies.Where(r => r.Status != HttpStatusCode.OK), r => Http.AssertProblem(r, HttpStatusCode.Conflict, "documents[0].id", "PUT"));
        JsonElement described = (await _server.Client.GetReplyAsync("/collections/race")).Json;
        Assert.Equal(1, described.GetProperty("documents").GetInt32());
    }

    [Fact]
    public async Task AddUpsertReadAndDeleteDocuments()
    {
        await CreateWithCorpusAsync("docs");
        Reply again = await _server.Client.PostAsync("/collections/docs/documents", Documents([Corpus[2]]));
        Http.AssertProblem(again, HttpStatusCode.Conflict, "documents[0].id", "PUT");

        var replacement = new { documents = new[] { new { id = "museums", text = "Replaced text about the Pergamon museum." } } };
        using (var put = new HttpRequestMessage(HttpMethod.Put, "/collections/docs/documents") { Content = JsonContent(replacement) })
            Assert.Equal(HttpStatusCode.OK, (await _server.Client.SendReplyAsync(put)).Status);
        JsonElement document = (await _server.Client.GetReplyAsync("/collections/docs/documents/museums")).Json;
        Assert.Equal("Replaced text about the Pergamon museum.", document.GetProperty("text").GetString());
        Assert.Equal("", document.GetProperty("title").GetString());

        // Acknowledged means on disk: a fresh read-only open replays it from the write-ahead log.
        using (Collection reopened = Collection.Open(Path.Combine(_root, "docs"), readOnly: true))
            Assert.Equal("Replaced text about the Pergamon museum.", reopened.Get("museums")!.Text);

        Reply batchDelete = await _server.Client.PostAsync("/collections/docs/documents/delete", new { ids = new[] { "paris", "rivers", "absent" } });
        Assert.Equal(2, batchDelete.Json.GetProperty("deleted").GetInt32());
        Reply single = await _server.Client.SendReplyAsync(new HttpRequestMessage(HttpMethod.Delete, "/collections/docs/documents/hamburg"));
        Assert.Equal(HttpStatusCode.NoContent, single.Status);
        Http.AssertProblem(await _server.Client.SendReplyAsync(new HttpRequestMessage(HttpMethod.Delete, "/collections/docs/documents/hamburg")),
            HttpStatusCode.NotFound, mentions: "hamburg");
        Http.AssertProblem(await _server.Client.GetReplyAsync("/collections/docs/documents/paris"), HttpStatusCode.NotFound);
        Assert.Equal(Corpus.Length - 3, (await _server.Client.GetReplyAsync("/collections/docs")).Json.GetProperty("documents").GetInt32());
    }

    [Fact]
    public async Task CreateTakesTheGraphParameters()
    {
        Reply created = await _server.Client.PostAsync("/collections",
            new { name = "tuned", hnsw_m = 24, ef_construction = 100, ef_search = 50, quantization = "int8" });
        Assert.Equal(HttpStatusCode.Created, created.Status);
        Funnel.Index.HnswOptions hnsw = CollectionManifest.Read(Path.Combine(_root, "tuned")).VectorIndex.Hnsw;
        Assert.Equal((24, 100, 50, Funnel.Index.VectorQuantization.Int8), (hnsw.M, hnsw.EfConstruction, hnsw.EfSearch, hnsw.Quantization));
    }

    [Fact]
    public async Task DeletingWaitsForTheRequestsThatHoldTheCollection()
    {
        string root = Path.Combine(_root, "store");
        using var store = new CollectionStore(root, models.BiEncoder);
        CollectionLease inFlight = store.Create("held", new CollectionOptions());
        Task deleting = store.DeleteAsync("held");
        await Task.Delay(100);
        Assert.False(deleting.IsCompleted, "the delete must wait for the request that holds the collection");
        // New requests no longer find it, and its name cannot be taken yet; the request in flight can still read it.
        Assert.Equal(StatusCodes.Status404NotFound, Assert.Throws<ApiException>(() => store.Use("held")).Status);
        Assert.Equal(StatusCodes.Status409Conflict, Assert.Throws<ApiException>(() => store.Create("held", new CollectionOptions())).Status);
        Assert.Empty(new SearchPipeline(inFlight.Collection.Collection, models.BiEncoder).Search("anything", new SearchOptions { Retriever = Retriever.Dense }).Results);
        Assert.True(Directory.Exists(Path.Combine(root, "held")));

        inFlight.Dispose();
        await deleting.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.False(Directory.Exists(Path.Combine(root, "held")));
        Assert.Empty(Directory.EnumerateDirectories(root));
        using (store.Create("held", new CollectionOptions())) { }
    }

    [Fact]
    public async Task DeletingACollectionWhileItIsSearchedWaitsForTheSearches()
    {
        Reply created = await _server.Client.PostAsync("/collections", new { name = "busy", index = "hnsw" });
        Assert.Equal(HttpStatusCode.Created, created.Status);
        Assert.Equal(HttpStatusCode.OK, (await _server.Client.PostAsync("/collections/busy/documents", Documents(Corpus))).Status);

        // Searches run until the delete has returned; each must either succeed or find the collection gone,
        // never fail inside a collection whose memory the delete has freed.
        using var stop = new CancellationTokenSource();
        var statuses = new System.Collections.Concurrent.ConcurrentBag<HttpStatusCode>();
        Task[] searchers = [.. Enumerable.Range(0, 4).Select(_ => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
                statuses.Add((await _server.Client.PostAsync("/collections/busy/search",
                    new { query = "Berlin museums", retriever = "hybrid", rerank = false, candidates = 6 })).Status);
        }))];
        while (statuses.Count(s => s == HttpStatusCode.OK) < 8) await Task.Delay(5);
        Reply deleted = await _server.Client.SendReplyAsync(new HttpRequestMessage(HttpMethod.Delete, "/collections/busy"));
        await Task.Delay(50);
        stop.Cancel();
        await Task.WhenAll(searchers);

        Assert.Equal(HttpStatusCode.NoContent, deleted.Status);
        Assert.All(statuses, s => Assert.True(s is HttpStatusCode.OK or HttpStatusCode.NotFound, $"a search got {(int)s}"));
        Assert.Contains(HttpStatusCode.NotFound, statuses);
        Assert.False(Directory.Exists(Path.Combine(_root, "busy")));
        Assert.Empty(Directory.EnumerateDirectories(_root));
        // The name is free again.
        Assert.Equal(HttpStatusCode.Created, (await _server.Client.PostAsync("/collections", new { name = "busy" })).Status);
    }

    [Theory]
    [InlineData("dense", true)]
    [InlineData("bm25", true)]
    [InlineData("hybrid", true)]
    [InlineData("hybrid", false)]
    [InlineData("hybrid", true, 0.5)]
    public async Task SearchMatchesThePipelineCalledDirectly(string retriever, bool rerank, double rerankWeight = 1)
    {
        await CreateWithCorpusAsync("docs");
        const string query = "How many people live in Berlin?";
        Reply reply = await _server.Client.PostAsync("/collections/docs/search",
            new { query, retriever, candidates = 5, top_k = 3, rerank, rerank_weight = rerankWeight, filter = new { lang = "en" }, ef_search = 40 });
        Assert.Equal(HttpStatusCode.OK, reply.Status);
        JsonElement[] hits = [.. reply.Json.GetProperty("results").EnumerateArray()];

        using Collection collection = Collection.Open(Path.Combine(_root, "docs"), readOnly: true);
        var pipeline = new SearchPipeline(collection, models.BiEncoder, models.CrossEncoder);
        SearchResponse expected = pipeline.Search(query, new SearchOptions
        {
            Retriever = Enum.Parse<Retriever>(retriever, ignoreCase: true),
            Candidates = 5,
            Results = 3,
            Rerank = rerank,
            RerankWeight = rerankWeight,
            EfSearch = 40,
            Filter = new MetadataFilter([KeyValuePair.Create("lang", "en")]),
        });

        Assert.Equal(expected.Results.Select(r => r.DocumentId), hits.Select(h => h.GetProperty("id").GetString()));
        Assert.DoesNotContain("hamburg", hits.Select(h => h.GetProperty("id").GetString()));
        for (int i = 0; i < hits.Length; i++)
        {
            SearchResult want = expected.Results[i];
            Assert.Equal(i + 1, hits[i].GetProperty("rank").GetInt32());
            Assert.Equal(want.Score, hits[i].GetProperty("score").GetDouble(), 1e-5);
            Assert.Equal(want.Passage, hits[i].GetProperty("passage").GetString());
            if (rerank)
            {
                // Bit for bit: the route runs the library's pipeline, over the batchers.
                Assert.Equal(want.RerankScore!.Value, hits[i].GetProperty("rerank_score").GetSingle());
                Assert.Equal(want.RerankLogit!.Value, hits[i].GetProperty("rerank_logit").GetSingle());
                Assert.Equal(rerankWeight < 1, hits[i].TryGetProperty("blend_score", out JsonElement blend));
                if (rerankWeight < 1) Assert.Equal(want.BlendScore!.Value, blend.GetDouble());
            }
            else
            {
                Assert.False(hits[i].TryGetProperty("rerank_score", out _));
                Assert.False(hits[i].TryGetProperty("rerank_logit", out _));
            }
        }
        JsonElement timings = reply.Json.GetProperty("timings_ms");
        Assert.True(timings.GetProperty("total").GetDouble() >= timings.GetProperty("rerank").GetDouble());

        // Each stage's time goes to /metrics too (this server searched once).
        string metrics = (await _server.Client.GetReplyAsync("/metrics")).Text;
        foreach (string stage in new[] { "embed", "retrieve", "fuse", "rerank" })
            Assert.Equal(1, Http.Metric(metrics, $"funnel_search_stage_duration_seconds_count{{stage=\"{stage}\"}}"));
        Assert.Equal(timings.GetProperty("rerank").GetDouble() / 1000, Http.Metric(metrics, "funnel_search_stage_duration_seconds_sum{stage=\"rerank\"}"), 1e-6);
    }

    [Theory]
    [InlineData("/collections", "{\"name\": \"bad name!\"}", "name", "not a valid collection name")]
    [InlineData("/collections", "{\"name\": \"ok\", \"index\": \"ivf\"}", "index", "\"hnsw\", \"flat\"")]
    [InlineData("/collections", "{\"name\": \"ok\", \"hnsw_m\": 1}", "hnsw_m", "between 2 and 256")]
    [InlineData("/collections", "{\"name\": \"ok\", \"quantization\": \"pq\"}", "quantization", "\"none\", \"int8\"")]
    [InlineData("/collections/docs/documents", "{\"documents\": []}", "documents", "must not be empty")]
    [InlineData("/collections/docs/documents", "{\"documents\": [{\"text\": \"x\"}]}", "documents[0].id", "required")]
    [InlineData("/collections/docs/documents", "{\"documents\": [{\"id\": \"a\", \"text\": \"x\"}, {\"id\": \"a\", \"text\": \"y\"}]}", "documents[1].id", "repeats")]
    [InlineData("/collections/docs/documents", "{\"documents\": [{\"id\": \"a\", \"text\": \"x\", \"metadata\": [1]}]}", "documents[0].metadata", "must be an object")]
    [InlineData("/collections/docs/search", "{\"query\": \" \\t \"}", "query", "empty (or only whitespace)")]
    [InlineData("/collections/docs/search", "{\"query\": \"q\", \"retriever\": \"semantic\"}", "retriever", "\"dense\", \"bm25\", \"hybrid\"")]
    [InlineData("/collections/docs/search", "{\"query\": \"q\", \"candidates\": 0}", "candidates", "between 1 and")]
    [InlineData("/collections/docs/search", "{\"query\": \"q\", \"ef_search\": 0}", "ef_search", "between 1 and")]
    [InlineData("/collections/docs/search", "{\"query\": \"q\", \"rerank_weight\": 1.5}", "rerank_weight", "between 0 and 1, got 1.5")]
    [InlineData("/collections/docs/search", "{\"query\": \"q\", \"rerank_weight\": \"half\"}", "rerank_weight", "a number")]
    [InlineData("/collections/docs/search", "{\"query\": \"q\", \"filter\": \"lang=en\"}", "filter", "an object")]
    [InlineData("/collections/docs/search", "{\"retriever\": \"bm25\"}", "query", "required")]
    public async Task InvalidRequestsNameTheField(string path, string body, string field, string mentions)
    {
        await CreateWithCorpusAsync("docs");
        Http.AssertProblem(await _server.Client.PostRawAsync(path, body), HttpStatusCode.BadRequest, field, mentions);
    }

    [Fact]
    public async Task ACollectionAnotherProcessWritesIsA409()
    {
        string folder = Path.Combine(_root, "busy");
        using (Collection.Create(folder, models.BiEncoder)) { }
        using Collection writer = Collection.Open(folder); // holds the writer lock, as `funnel index` would
        Http.AssertProblem(await _server.Client.GetReplyAsync("/collections/busy"), HttpStatusCode.Conflict, mentions: "another process");
    }

    [Fact]
    public async Task UnknownCollectionsAndDisabledCollectionsAre404()
    {
        Http.AssertProblem(await _server.Client.PostAsync("/collections/nope/search", new { query = "q" }), HttpStatusCode.NotFound, mentions: "nope");
        Http.AssertProblem(await _server.Client.GetReplyAsync("/collections/bad%20name"), HttpStatusCode.BadRequest, "name");
        await using RunningServer without = await RunningServer.StartAsync(models.Both);
        Http.AssertProblem(await without.Client.GetReplyAsync("/collections"), HttpStatusCode.NotFound, mentions: "--collections");
    }

    private static StringContent JsonContent(object body) =>
        new(JsonSerializer.Serialize(body), System.Text.Encoding.UTF8, "application/json");
}
