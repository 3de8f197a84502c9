using System.Collections.Concurrent;
using System.Diagnostics;
using Funnel.Cluster.Coordination;
using Funnel.Cluster.Grains;
using Funnel.Retrieval;
using Funnel.Tests.Retrieval;
using Orleans.TestingHost;

namespace Funnel.Cluster.Tests;

/// <summary>Nodes die while writes and queries run, and come back: nothing acknowledged is lost, reads go on, replicas catch up.</summary>
public sealed class FailureTests(ClusterModels fixture) : IClassFixture<ClusterModels>
{
    private readonly SmallModels _m = fixture.Models;

    private static readonly CollectionOptions Exact = new() { VectorIndex = new VectorIndexSettings { Kind = VectorIndexKind.Flat } };

    [Fact]
    public async Task Killing_a_node_loses_no_acknowledged_write_and_queries_keep_answering_with_two_replicas()
    {
        await using TestNodes nodes = await TestNodes.StartAsync(_m.BiEncoder);
        ClusterCollections cluster = nodes.Coordinator;
        // 3 shards × 2 replicas on Primary, Secondary_1, Secondary_2: shards 0 and 1 have a replica on Secondary_1, shard 2 not.
        ClusterLayout layout = await cluster.CreateAsync("live", new ShardingOptions { Shards = 3, Replicas = 2 }, Exact);
        Assert.Equal(["Secondary_2", "Primary"], layout.Nodes[2]);
        await cluster.UpsertAsync("live", _m.Documents.Take(20).ToList());

        var acknowledged = new ConcurrentBag<string>(_m.Documents.Take(20).Select(d => d.Id));
        var refusals = new ConcurrentBag<ClusterException>();
        var answered = new ConcurrentBag<SearchResponse>();
        using var stop = new CancellationTokenSource();
        Task writer = Task.Run(async () =>
        {
            foreach (Document document in _m.Documents.Skip(20))
            {
                try
                {
                    await cluster.UpsertAsync("live", [document]);
                    acknowledged.Add(document.Id);
                }
                catch (ClusterException refused)
                {
                    refusals.Add(refused);
                }
                await Task.Delay(100);
            }
        });
        Task reader = Task.Run(async () =>
        {
            for (int i = 0; !stop.IsCancellationRequested; i++)
            {
                var options = new SearchOptions { Retriever = i % 2 == 0 ? Retriever.Bm25 : Retriever.Dense, Candidates = 10, Results = 10, Rerank = false };
                answered.Add(await cluster.SearchAsync("live", ShardedSearchTests.Queries[i % ShardedSearchTests.Queries.Length], options));
                await Task.Delay(50);
            }
        });

        await Task.Delay(1000);
        SiloHandle killed = await nodes.KillAsync("Secondary_1");
        await writer;
        await Task.Delay(500);
        stop.Cancel();
        await reader; // a query that threw would fail the test here

        Assert.True(answered.Count > 20, $"{answered.Count} queries answered");
        Assert.All(answered, r => Assert.Empty(r.Unsearched)); // each shard always had a live replica
        // Writes to shards with a replica on the dead node were refused, naming the shard (as were any whose shard grain was
        // there, until it moved); shard 2's went on.
        Assert.NotEmpty(refusals);
        Assert.All(refusals, r => Assert.Equal(ClusterProblem.Unavailable, r.Problem));
        Assert.All(refusals, r => Assert.Matches(@"shard live/\d", r.Message));
        Assert.Contains(refusals, r => r.Message.Contains("a write needs 2", StringComparison.Ordinal));
        Assert.Contains(acknowledged, id => layout.ShardOf(id) == 2 && _m.Documents.Skip(20).Any(d => d.Id == id));

        foreach (string id in acknowledged)
            Assert.NotNull(await cluster.GetAsync("live", id));

        // The node comes back, catches up from its peers, and serves again; then the other replicas' node dies.
        await nodes.RestartAsync(killed);
        await WaitInSyncAsync(cluster, "live");
        await nodes.KillAsync("Secondary_2");
        foreach (string id in acknowledged.Where(id => layout.ShardOf(id) != 2))
            Assert.NotNull(await cluster.GetAsync("live", id));
    }

    [Fact]
    public async Task A_restarted_node_catches_up_before_it_serves()
    {
        await using TestNodes nodes = await TestNodes.StartAsync(_m.BiEncoder);
        ClusterCollections cluster = nodes.Coordinator;
        ClusterLayout layout = await cluster.CreateAsync("docs", new ShardingOptions { Shards = 2, Replicas = 3 }, Exact); // W = 2
        await cluster.UpsertAsync("docs", _m.Documents.Take(30).ToList());

        SiloHandle killed = await nodes.KillAsync("Secondary_1");
        // With one node of three down, a quorum of two acknowledges writes and deletes.
        await cluster.UpsertAsync("docs", _m.Documents.Skip(30).ToList());
        await cluster.DeleteAsync("docs", [_m.Documents[0].Id]);

        await nodes.RestartAsync(killed);
        await WaitInSyncAsync(cluster, "docs");
        var expected = _m.Documents.Skip(1).Select(d => d.Id).Order(StringComparer.Ordinal).ToList();
        for (int s = 0; s < layout.Shards; s++)
        {
            var members = ShardMembers.Of(layout, s);
            string[][] copies = await Task.WhenAll(members.Nodes.Select(n => nodes.Cluster.Client.GetGrain<IShardReplicaGrain>(members.ReplicaKey(n)).ExportIdsAsync()));
            Assert.All(copies, ids => Assert.Equal(copies[0], ids));
            Assert.Equal(expected.Where(id => layout.ShardOf(id) == s), copies[0]);
        }

        // Only the caught-up node and one other are left: every document is still found, by id and by search.
        await nodes.KillAsync("Secondary_2");
        foreach (string id in expected) Assert.NotNull(await cluster.GetAsync("docs", id));
        Assert.Null(await cluster.GetAsync("docs", _m.Documents[0].Id));
        SearchResponse all = await cluster.SearchAsync("docs", "the", new SearchOptions { Retriever = Retriever.Dense, Candidates = 100, Results = 100, Rerank = false });
        Assert.Equal(expected, all.Results.Select(r => r.DocumentId).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Writes_below_the_quorum_get_an_error_naming_the_shard_not_a_hang()
    {
        await using TestNodes nodes = await TestNodes.StartAsync(_m.BiEncoder);
        ClusterCollections cluster = nodes.Coordinator;
        await cluster.CreateAsync("one", new ShardingOptions { Shards = 1, Replicas = 2 }, Exact); // Primary and Secondary_1, W = 2
        await cluster.UpsertAsync("one", _m.Documents.Take(3).ToList());
        await nodes.KillAsync("Secondary_1");

        var clock = Stopwatch.StartNew();
        var refused = await Assert.ThrowsAsync<ClusterException>(() => cluster.UpsertAsync("one", [_m.Documents[5]]));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"refused after {clock.Elapsed}");
        Assert.Equal(ClusterProblem.Unavailable, refused.Problem);
        Assert.Contains("shard one/0", refused.Message);
        // Reads go on from the replica left.
        Assert.NotNull(await cluster.GetAsync("one", _m.Documents[1].Id));
        var status = await cluster.ShardStatusAsync("one", 0);
        Assert.Equal("down", status.Replicas.Single(r => r.Node == "Secondary_1").State);
    }

    [Fact]
    public async Task A_batch_sent_again_is_applied_once_and_another_batch_at_its_number_is_refused()
    {
        await using TestNodes nodes = await TestNodes.StartAsync(_m.BiEncoder);
        ClusterCollections cluster = nodes.Coordinator;
        await cluster.CreateAsync("again", new ShardingOptions { Shards = 1, Replicas = 2 }, Exact);
        await cluster.UpsertAsync("again", _m.Documents.Take(4).ToList());
        // The shard grain sends a batch again when its message may have been lost on the way: as it would, straight to a replica.
        IShardReplicaGrain replica = nodes.Cluster.GrainFactory.GetGrain<IShardReplicaGrain>("again/0@Primary");
        ReplicaPosition before = await replica.PositionAsync();
        var batch = new ShardWrite([], [_m.Documents[0].Id, _m.Documents[1].Id]);
        var id = Guid.NewGuid();

        Assert.Equal(2, await replica.ApplyAsync(before.Sequence + 1, id, batch));
        Assert.Equal(2, await replica.ApplyAsync(before.Sequence + 1, id, batch)); // what the batch did, not done twice
        ReplicaPosition after = await replica.PositionAsync();
        Assert.Equal((before.Sequence + 1, id, before.Documents - 2), (after.Sequence, after.BatchId, after.Documents));

        var other = await Assert.ThrowsAsync<ClusterException>(() => replica.ApplyAsync(before.Sequence + 1, Guid.NewGuid(), batch));
        Assert.Equal(ClusterProblem.Conflict, other.Problem);
        Assert.Equal(after, await replica.PositionAsync());
    }

    /// <summary>Waits (at most a minute) until every replica of the collection is in sync.</summary>
    private static async Task WaitInSyncAsync(ClusterCollections cluster, string name)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var status = await cluster.StatusAsync(name);
            if (status.All(s => s.Replicas.All(r => r.State == "in-sync"))) return;
            if (clock.Elapsed > TimeSpan.FromMinutes(1))
                Assert.Fail("replicas still not in sync: " + string.Join("; ", status.SelectMany(s => s.Replicas.Select(r => $"{s.Name}@{r.Node} {r.State}"))));
            await Task.Delay(500);
        }
    }
}
