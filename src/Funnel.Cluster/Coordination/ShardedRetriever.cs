using System.Collections.Concurrent;
using System.Diagnostics;
using Funnel.Cluster.Grains;
using Funnel.Inference;
using Funnel.Retrieval;
using Microsoft.Extensions.AI;

namespace Funnel.Cluster.Coordination;

/// <summary>
/// One first stage of a sharded collection, scatter-gather: each query goes to one in-sync replica of every shard (the one
/// this coordinator has fewest requests in flight to), each shard answers its top N, and the lists merge into the global top
/// N (score, then id). Dense queries are embedded once, here. BM25 first gathers the query terms' statistics from every shard
/// and sums them, so that each shard scores with collection-wide document frequencies and average length (Elasticsearch's
/// dfs_query_then_fetch): scores equal those of one collection holding every document. A shard with no replica to answer is
/// named in <see cref="RetrievalBatch.Unsearched"/>.
/// </summary>
internal sealed class ShardedRetriever : IRetriever
{
    private readonly IGrainFactory _grains;
    private readonly ClusterLayout _layout;
    private readonly IEmbeddingGenerator<string, Embedding<float>>? _queryEncoder;
    private readonly ReplicaLoad _load;
    private readonly ReadPolicy _policy;

    /// <param name="queryEncoder">Null: a BM25 retriever; else a dense one embedding with it.</param>
    public ShardedRetriever(IGrainFactory grains, ClusterLayout layout, IEmbeddingGenerator<string, Embedding<float>>? queryEncoder, ReplicaLoad load, ReadPolicy policy)
    {
        _policy = policy;
        _grains = grains;
        _layout = layout;
        _queryEncoder = queryEncoder;
        _load = load;
        if (queryEncoder?.GetService<ModelFingerprint>() is { } fingerprint && !fingerprint.IsCompatibleWith(layout.BiEncoder))
            throw new ClusterException(ClusterProblem.Conflict,
                $"collection '{layout.Name}' was indexed with bi-encoder {layout.BiEncoder.Model}, not {fingerprint.Model} that this node embeds queries with; their vectors are not comparable");
    }

    public async Task<RetrievalBatch> RetrieveAsync(IReadOnlyList<RetrievalQuery> queries, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(queries);
        if (queries.Count == 0) return new RetrievalBatch([], default, default, default);
        long start = Stopwatch.GetTimestamp();
        float[][]? vectors = null;
        if (_queryEncoder is not null)
        {
            TimeSpan? timeout = queries.Select(q => q.Options.Timeout).Where(t => t is not null).DefaultIfEmpty(null).Min();
            var settings = new SentenceEmbeddingOptions { Role = EmbeddingRole.Query, Timeout = timeout }.ToGenerationOptions();
            var embeddings = await _queryEncoder.GenerateAsync(queries.Select(q => q.Text), settings, cancellationToken).ConfigureAwait(false);
            vectors = [.. embeddings.Select(e => e.Vector.ToArray())];
        }
        TimeSpan embed = Stopwatch.GetElapsedTime(start);

        long scatterStart = Stopwatch.GetTimestamp();
        ShardReaders[] readers = await Task.WhenAll(Enumerable.Range(0, _layout.Shards)
            .Select(s => ShardReads.ReadersAsync(_grains, ShardMembers.Of(_layout, s), _load, _policy))).WaitAsync(cancellationToken).ConfigureAwait(false);
        var unsearched = new ConcurrentBag<string>();
        var perQuery = await Task.WhenAll(queries.Select((q, i) => SearchOneAsync(q, vectors?[i], readers, unsearched, cancellationToken))).ConfigureAwait(false);
        TimeSpan scatter = Stopwatch.GetElapsedTime(scatterStart);

        long gatherStart = Stopwatch.GetTimestamp();
        var candidates = new IReadOnlyList<Candidate>[queries.Count];
        for (int q = 0; q < queries.Count; q++)
        {
            var merged = perQuery[q].SelectMany(h => h).OrderByDescending(h => h.Score).ThenBy(h => h.Id, StringComparer.Ordinal).Take(queries[q].Options.Candidates);
            var list = new List<Candidate>();
            foreach (ShardHit hit in merged)
            {
                var candidate = new Candidate(hit.Id, hit.Score) { Title = hit.Title, Passage = hit.Passage, Metadata = hit.Metadata };
                list.Add(vectors is null ? candidate with { Bm25Score = hit.Score, Bm25Rank = list.Count + 1 } : candidate with { DenseScore = hit.Score, DenseRank = list.Count + 1 });
            }
            candidates[q] = list;
        }
        TimeSpan gather = Stopwatch.GetElapsedTime(gatherStart);
        return new RetrievalBatch(candidates, embed, scatter + gather, TimeSpan.Zero)
        {
            Scatter = scatter, Gather = gather, Unsearched = [.. unsearched.Distinct().Order(StringComparer.Ordinal)],
        };
    }

    /// <summary>One query on every shard: each shard's hits (empty for a shard nobody could answer for, which is recorded).</summary>
    private async Task<ShardHit[][]> SearchOneAsync(RetrievalQuery query, float[]? vector, ShardReaders[] readers, ConcurrentBag<string> unsearched,
        CancellationToken ct)
    {
        ShardQuery shardQuery = ShardQuery.Of(query.Options);
        if (vector is not null)
            return await Task.WhenAll(Enumerable.Range(0, _layout.Shards).Select(s =>
                OnReplicaAsync(s, readers[s], unsearched, replica => replica.SearchDenseAsync(vector, shardQuery), [], ct))).ConfigureAwait(false);

        // BM25: the replica that gave a shard's statistics scores it too (the same state); should it fail in between, another
        // in-sync replica holds the same documents.
        var chosen = new (IShardReplicaGrain Replica, string Node)?[_layout.Shards];
        ShardBm25Statistics?[] parts = await Task.WhenAll(Enumerable.Range(0, _layout.Shards).Select(s =>
            OnReplicaAsync<ShardBm25Statistics?>(s, readers[s], unsearched, async replica =>
            {
                ShardBm25Statistics statistics = await replica.Bm25StatisticsAsync(query.Text);
                chosen[s] = (replica, NodeOfReplica(replica));
                return statistics;
            }, null, ct))).ConfigureAwait(false);
        var total = ShardBm25Statistics.Of(Retrieval.Lexical.Bm25Statistics.Sum(parts.OfType<ShardBm25Statistics>().Select(p => p.ToStatistics())));
        return await Task.WhenAll(Enumerable.Range(0, _layout.Shards).Select(s => chosen[s] is { } c
            ? OnReplicaAsync(s, new ShardReaders([c.Node, .. readers[s].Nodes.Where(n => n != c.Node)], readers[s].Sequence), unsearched,
                replica => replica.SearchBm25Async(query.Text, shardQuery, total), [], ct, inOrder: true)
            : Task.FromResult<ShardHit[]>([]))).ConfigureAwait(false);
    }

    private static string NodeOfReplica(IShardReplicaGrain replica) => Placement.NodePlacement.NodeOf(replica.GetPrimaryKeyString());

    /// <summary>Runs <paramref name="call"/> on the least loaded in-sync replica of shard <paramref name="shard"/>, falling back to
    /// the others (<see cref="ShardReads.OnReplicaAsync"/>); <paramref name="none"/> when none could answer, which is recorded.</summary>
    /// <param name="inOrder">Try the replicas in the order given rather than least loaded first.</param>
    private async Task<T> OnReplicaAsync<T>(int shard, ShardReaders readers, ConcurrentBag<string> unsearched, Func<IShardReplicaGrain, Task<T>> call, T none,
        CancellationToken ct, bool inOrder = false)
    {
        ShardMembers members = ShardMembers.Of(_layout, shard);
        var (answered, value) = await ShardReads.OnReplicaAsync(_grains, members, inOrder ? readers.Nodes : _load.LeastLoadedFirst(readers.Nodes),
            _load, _policy, call, ct).ConfigureAwait(false);
        if (answered) return value;
        unsearched.Add(members.Name);
        return none;
    }
}

/// <summary>Requests this coordinator has in flight per node: a search goes to the replica whose node has fewest.</summary>
internal sealed class ReplicaLoad
{
    private readonly ConcurrentDictionary<string, int> _inFlight = new(StringComparer.Ordinal);
    private int _turn;

    /// <summary>The nodes by load, ties rotated so that equally loaded replicas share the work.</summary>
    public IEnumerable<string> LeastLoadedFirst(string[] nodes)
    {
        int turn = Interlocked.Increment(ref _turn);
        return nodes.Select((n, i) => (n, Load: _inFlight.GetValueOrDefault(n), Tie: (i + turn) % Math.Max(1, nodes.Length)))
            .OrderBy(x => x.Load).ThenBy(x => x.Tie).Select(x => x.n).ToList();
    }

    public Leave Enter(string node)
    {
        _inFlight.AddOrUpdate(node, 1, (_, n) => n + 1);
        return new Leave(this, node);
    }

    public readonly struct Leave(ReplicaLoad load, string node) : IDisposable
    {
        public void Dispose() => load._inFlight.AddOrUpdate(node, 0, (_, n) => n - 1);
    }
}
