using Funnel.Cluster.Coordination;
using Funnel.Cluster.Grains;
using Funnel.Retrieval;
using Funnel.Tests.Retrieval;

namespace Funnel.Cluster.Tests;

/// <summary>A 3-node cluster against one collection holding the same documents: with exact (flat) indexes their results are the same.</summary>
public sealed class ShardedSearchTests(ClusterModels fixture) : IClassFixture<ClusterModels>
{
    private readonly SmallModels _m = fixture.Models;

    public static readonly string[] Queries = ["breast cancer risk", "vitamin D deficiency", "statin drugs and cholesterol", "diet and obesity in children", "fish oil omega-3 fatty acids"];

    private static readonly CollectionOptions Exact = new() { VectorIndex = new VectorIndexSettings { Kind = VectorIndexKind.Flat } };

    [Fact]
    public async Task Sharded_dense_bm25_and_hybrid_results_equal_one_collections()
    {
        await using TestNodes nodes = await TestNodes.StartAsync(_m.BiEncoder);
        ClusterCollections cluster = nodes.Coordinator;
        ClusterLayout layout = await cluster.CreateAsync("docs", new ShardingOptions { Shards = 4, Replicas = 2 }, Exact);
        await cluster.UpsertAsync("docs", _m.Documents);

        string folder = Path.Combine(nodes.DataRoot, "single");
        using Collection single = Collection.Create(folder, _m.BiEncoder, Exact);
        // The same one embedding call as the coordinator's, so that the vectors are bit for bit the same.
        single.Upsert(new DocumentEmbedder(_m.BiEncoder, single.Manifest.Chunking).Embed(_m.Documents));
        var local = new SearchPipeline(single, _m.BiEncoder, _m.CrossEncoder);

        // Documents spread over all shards, each shard's replicas on two different nodes.
        var status = await cluster.StatusAsync("docs");
        Assert.All(layout.Nodes, replicas => Assert.Equal(2, replicas.Distinct().Count()));
        Assert.All(status, s => Assert.All(s.Replicas, r => Assert.Equal("in-sync", r.State)));
        Assert.All(status, s => Assert.True(s.Replicas[0].Position!.Documents > 0, $"shard {s.Name} is empty"));
        Assert.Equal(_m.Documents.Count, status.Sum(s => s.Replicas[0].Position!.Documents));

        foreach (Retriever retriever in new[] { Retriever.Dense, Retriever.Bm25, Retriever.Hybrid })
            foreach (string query in Queries)
                foreach (bool rerank in new[] { false, true })
                {
                    var options = new SearchOptions { Retriever = retriever, Candidates = 20, Results = rerank ? 10 : 20, Rerank = rerank };
                    SearchResponse expected = await local.SearchAsync(query, options);
                    SearchResponse actual = await cluster.SearchAsync("docs", query, options, _m.CrossEncoder);
                    Assert.Empty(actual.Unsearched);
                    Assert.NotEmpty(expected.Results);
                    Assert.Equal(Summary(expected), Summary(actual));
                    Assert.True(actual.Timings.Scatter > TimeSpan.Zero, "the scatter is timed");
                }

        // A cancelled search stops at the shard reads (BM25 embeds nothing, so nothing else would see the token).
        IRetriever sharded = await cluster.RetrieverAsync("docs");
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            sharded.RetrieveAsync([new RetrievalQuery("q", Queries[0], new SearchOptions { Retriever = Retriever.Bm25 })], cancelled.Token));
    }

    private static List<string> Summary(SearchResponse r) =>
        [.. r.Results.Select(x => $"{x.Rank} {x.DocumentId} dense={x.DenseScore:R}/{x.DenseRank} bm25={x.Bm25Score:R}/{x.Bm25Rank} fused={x.FusedScore:R} rerank={x.RerankScore:R} passage={x.Passage.Length}")];

    [Fact]
    public async Task Bad_requests_get_errors_that_name_what_is_wrong()
    {
        await using TestNodes nodes = await TestNodes.StartAsync(_m.BiEncoder);
        ClusterCollections cluster = nodes.Coordinator;
        var tooMany = await Assert.ThrowsAsync<ClusterException>(() => cluster.CreateAsync("x", new ShardingOptions { Shards = 2, Replicas = 4 }, Exact));
        Assert.Equal(ClusterProblem.Invalid, tooMany.Problem);
        Assert.Contains("4 replicas per shard need 4 nodes", tooMany.Message);
        Assert.Equal("replicas", tooMany.Field);

        var quorum = await Assert.ThrowsAsync<ClusterException>(() => cluster.CreateAsync("x", new ShardingOptions { Shards = 2, Replicas = 2, WriteQuorum = 3 }, Exact));
        Assert.Equal("write_quorum", quorum.Field);

        await cluster.CreateAsync("docs", new ShardingOptions { Shards = 2, Replicas = 2 }, Exact);
        var taken = await Assert.ThrowsAsync<ClusterException>(() => cluster.CreateAsync("docs", new ShardingOptions { Shards = 2, Replicas = 2 }, Exact));
        Assert.Equal(ClusterProblem.Conflict, taken.Problem);

        await cluster.UpsertAsync("docs", _m.Documents.Take(5).ToList());
        var exists = await Assert.ThrowsAsync<ClusterException>(() => cluster.UpsertAsync("docs", _m.Documents.Skip(3).Take(4).ToList(), replace: false));
        Assert.Equal(ClusterProblem.Conflict, exists.Problem);
        Assert.Contains($"already has a document '{_m.Documents[3].Id}'", exists.Message);
        Assert.Equal("documents[0].id", exists.Field);
        Assert.Null(await cluster.GetAsync("docs", _m.Documents[6].Id)); // nothing of the refused batch was written

        var shard = await Assert.ThrowsAsync<ClusterException>(() => cluster.ShardStatusAsync("docs", 7));
        Assert.Equal(ClusterProblem.NotFound, shard.Problem);
        Assert.Contains("has no shard 7; its shards are 0 to 1", shard.Message);
        var missing = await Assert.ThrowsAsync<ClusterException>(() => cluster.LayoutAsync("nope"));
        Assert.Equal(ClusterProblem.NotFound, missing.Problem);

        Assert.Equal(_m.Documents[2], await cluster.GetAsync("docs", _m.Documents[2].Id), DocumentComparer.Instance);
        Assert.Equal(2, (await cluster.DeleteAsync("docs", [_m.Documents[0].Id, _m.Documents[1].Id, "absent"])).Count);
        await cluster.DeleteCollectionAsync("docs");
        Assert.Empty(await cluster.ListAsync());
        Assert.All(Directory.GetDirectories(nodes.DataRoot), node => Assert.False(Directory.Exists(Path.Combine(node, "docs"))));
    }

    [Theory]
    [InlineData("version")]
    [InlineData("bi-encoder")]
    public async Task A_node_with_another_version_or_bi_encoder_cannot_join(string differs)
    {
        var overrides = new Dictionary<string, string>
        {
            [differs == "version" ? "Funnel:VersionOf:Secondary_2" : "Funnel:BiEncoderOf:Secondary_2"] = differs == "version"
                ? "0.0.1-other"
                : FunnelNodeOptions.FingerprintJson(_m.OtherBiEncoder.Fingerprint),
        };
        await using TestNodes nodes = await TestNodes.StartAsync(_m.BiEncoder, silos: 2, overrides);
        Exception refused = await Assert.ThrowsAnyAsync<Exception>(() => nodes.Cluster.StartAdditionalSiloAsync());
        Assert.Contains(differs == "version" ? "this node 0.0.1-other; every node must run the same version" : "their vectors are not comparable", refused.ToString());
    }
}

internal sealed class DocumentComparer : IEqualityComparer<Document?>
{
    public static readonly DocumentComparer Instance = new();

    public bool Equals(Document? x, Document? y) => x is not null && y is not null && x.Id == y.Id && x.Title == y.Title && x.Text == y.Text
        && x.Metadata.Count == y.Metadata.Count && x.Metadata.All(p => y.Metadata.TryGetValue(p.Key, out string? v) && v == p.Value);

    public int GetHashCode(Document? d) => d?.Id.GetHashCode(StringComparison.Ordinal) ?? 0;
}
