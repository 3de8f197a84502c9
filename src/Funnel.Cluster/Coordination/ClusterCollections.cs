using System.Collections.Concurrent;
using Funnel.Cluster.Grains;
using Funnel.Inference;
using Funnel.Retrieval;
using Microsoft.Extensions.AI;

namespace Funnel.Cluster.Coordination;

/// <summary>How to shard a new collection: S shards × R replicas, acknowledged by W (null: a majority of R).</summary>
public sealed record ShardingOptions
{
    public const int MaxShards = 1024;

    public int Shards { get; init; } = 1;
    public int Replicas { get; init; } = 1;
    public int? WriteQuorum { get; init; }

    public void Validate()
    {
        if (Shards is < 1 or > MaxShards) throw new ClusterException(ClusterProblem.Invalid, $"'shards' must be between 1 and {MaxShards} (got {Shards})", "shards");
        if (Replicas is < 1 or > 16) throw new ClusterException(ClusterProblem.Invalid, $"'replicas' must be between 1 and 16 (got {Replicas})", "replicas");
        if (WriteQuorum is { } w && (w < 1 || w > Replicas))
            throw new ClusterException(ClusterProblem.Invalid, $"'write_quorum' must be between 1 and the replicas ({Replicas}); got {w}", "write_quorum");
    }
}

/// <summary>A shard and how each of its replicas stands.</summary>
public sealed record ShardStatus(int Shard, string Name, IReadOnlyList<ReplicaStatus> Replicas);

/// <summary>What a write did: documents written (or deleted), and per shard the batch number and the replicas that acknowledged it.</summary>
public sealed record ClusterWriteResult(int Count, IReadOnlyDictionary<string, ShardAck> Shards);

/// <summary>
/// The coordinator of a cluster's sharded collections, stateless: any node (or a client) can run one. It embeds documents and
/// queries itself, sends each document to its shard (by a stable hash of its id), scatters searches to one replica per shard
/// and gathers the lists (<see cref="ShardedRetriever"/>); the cross-encoder reranks the global candidates once
/// (<see cref="SearchPipeline"/>).
/// </summary>
public sealed class ClusterCollections
{
    private readonly IGrainFactory _grains;
    private readonly SentenceEncoder? _biEncoder;
    private readonly IEmbeddingGenerator<string, Embedding<float>>? _queryEncoder;
    private readonly ConcurrentDictionary<string, ClusterLayout> _layouts = new(StringComparer.Ordinal);
    private readonly ReplicaLoad _load = new();

    /// <param name="biEncoder">Chunks and embeds documents (null: this coordinator cannot write documents or search densely).</param>
    /// <param name="queryEncoder">Embeds queries (e.g. the service's batcher around <paramref name="biEncoder"/>); null: <paramref name="biEncoder"/>.</param>
    public ClusterCollections(IGrainFactory grains, SentenceEncoder? biEncoder, IEmbeddingGenerator<string, Embedding<float>>? queryEncoder = null)
    {
        ArgumentNullException.ThrowIfNull(grains);
        _grains = grains;
        _biEncoder = biEncoder;
        _queryEncoder = queryEncoder ?? biEncoder;
    }

    public SentenceEncoder? BiEncoder => _biEncoder;

    /// <summary>How long a replica or shard may take to answer a read before it counts as failed.</summary>
    public TimeSpan ReadTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How long a read waits for one replica before it asks the next one too (a hedged request); the first answer
    /// wins. Well above a shard's search time, so that only reads stuck on a failing node or connection are doubled.</summary>
    public TimeSpan HedgeAfter { get; init; } = TimeSpan.FromSeconds(1);

    private ReadPolicy Reads => new(ReadTimeout, HedgeAfter);

    public async Task<ClusterLayout> CreateAsync(string name, ShardingOptions sharding, CollectionOptions options, CancellationToken ct = default)
    {
        CheckName(name);
        sharding.Validate();
        SentenceEncoder biEncoder = _biEncoder ?? throw new ClusterException(ClusterProblem.Invalid,
            "creating a collection needs a bi-encoder to embed its documents; start the node with --bi-encoder MODEL");
        ChunkingOptions chunking = options.Chunking ?? Collection.DefaultChunking(biEncoder.MaxDocumentTokens);
        DocumentEmbedder.CheckFits(chunking, biEncoder, nameof(options));
        string settings = ClusterLayout.SettingsOf(biEncoder.Fingerprint, options with { Chunking = chunking });
        ClusterLayout layout = await _grains.GetGrain<ICollectionGrain>(name)
            .CreateAsync(sharding.Shards, sharding.Replicas, sharding.WriteQuorum ?? ClusterLayout.Majority(sharding.Replicas), settings).WaitAsync(ct);
        _layouts[name] = layout;
        return layout;
    }

    /// <summary>Every collection some node that is up knows, by name (every node keeps every layout, so one that just died
    /// and is not yet known to be down is skipped).</summary>
    public async Task<IReadOnlyList<ClusterLayout>> ListAsync(CancellationToken ct = default)
    {
        string[] nodes = await ClusterNodes.ActiveAsync(_grains).WaitAsync(ct);
        var known = await Task.WhenAll(nodes.Select(async n =>
        {
            try
            {
                return await _grains.GetGrain<INodeGrain>(n).LayoutsAsync().WaitAsync(ReadTimeout, ct);
            }
            catch (Exception e) when (e is Orleans.Runtime.OrleansException or TimeoutException or ClusterException { Problem: ClusterProblem.Unavailable })
            {
                return [];
            }
        }));
        return [.. known.SelectMany(l => l).DistinctBy(l => l.Name).OrderBy(l => l.Name, StringComparer.Ordinal)];
    }

    /// <summary>The layout of collection <paramref name="name"/>; <see cref="ClusterProblem.NotFound"/> when no node that is up knows it.</summary>
    public async Task<ClusterLayout> LayoutAsync(string name, CancellationToken ct = default)
    {
        CheckName(name);
        if (_layouts.TryGetValue(name, out ClusterLayout? cached)) return cached;
        ClusterLayout layout = (await ListAsync(ct)).FirstOrDefault(l => l.Name == name)
            ?? throw new ClusterException(ClusterProblem.NotFound, $"there is no collection '{name}' (GET /collections lists them)");
        return _layouts[name] = layout;
    }

    public async Task<IReadOnlyList<ShardStatus>> StatusAsync(string name, CancellationToken ct = default)
    {
        ClusterLayout layout = await LayoutAsync(name, ct);
        return await Task.WhenAll(Enumerable.Range(0, layout.Shards).Select(s => ShardStatusAsync(layout, s))).WaitAsync(ct);
    }

    /// <summary>One shard's status; <see cref="ClusterProblem.NotFound"/> for a shard the collection does not have.</summary>
    public async Task<ShardStatus> ShardStatusAsync(string name, int shard, CancellationToken ct = default) =>
        await ShardStatusAsync(await LayoutAsync(name, ct), CheckShard(await LayoutAsync(name, ct), shard)).WaitAsync(ct);

    /// <summary>Catches up the replicas of a shard that are behind now, rather than at the shard's next write or timer.</summary>
    public async Task<ShardStatus> RepairAsync(string name, int shard, CancellationToken ct = default)
    {
        ClusterLayout layout = await LayoutAsync(name, ct);
        ShardMembers members = ShardMembers.Of(layout, CheckShard(layout, shard));
        await OnShardAsync(members, async s => { await s.RepairAsync(members); return 0; }).WaitAsync(ct);
        return await ShardStatusAsync(layout, shard);
    }

    public async Task DeleteCollectionAsync(string name, CancellationToken ct = default)
    {
        CheckName(name);
        await _grains.GetGrain<ICollectionGrain>(name).DeleteAsync().WaitAsync(ct);
        _layouts.TryRemove(name, out _);
    }

    /// <summary>
    /// Embeds <paramref name="documents"/> and writes each shard's part as one batch. Acknowledged (returns) only when every
    /// shard's quorum made its part durable; otherwise a <see cref="ClusterProblem.Unavailable"/> error names the shards that
    /// did not (the others' parts are durable). Without <paramref name="replace"/>, ids the collection holds are refused first.
    /// </summary>
    public async Task<ClusterWriteResult> UpsertAsync(string name, IReadOnlyList<Document> documents, bool replace = true, CancellationToken ct = default)
    {
        ClusterLayout layout = await LayoutAsync(name, ct);
        SentenceEncoder biEncoder = _biEncoder ?? throw new ClusterException(ClusterProblem.Invalid, "writing documents needs a bi-encoder; start the node with --bi-encoder MODEL");
        if (!biEncoder.Fingerprint.IsCompatibleWith(layout.BiEncoder))
            throw new ClusterException(ClusterProblem.Conflict, $"collection '{name}' was indexed with bi-encoder {layout.BiEncoder.Model}, not {biEncoder.Fingerprint.Model}; their vectors are not comparable");
        var byShard = documents.Select((d, i) => (d, i)).GroupBy(x => layout.ShardOf(x.d.Id)).ToDictionary(g => g.Key, g => g.ToList());
        if (!replace)
        {
            var existing = await Task.WhenAll(byShard.Select(async g =>
            {
                ShardMembers members = ShardMembers.Of(layout, g.Key);
                return await OnShardAsync(members, shard => shard.ExistingAsync(members, [.. g.Value.Select(x => x.d.Id)]));
            })).WaitAsync(ct);
            if (existing.SelectMany(e => e).FirstOrDefault() is { } taken)
            {
                int index = documents.Select((d, i) => (d, i)).First(x => x.d.Id == taken).i;
                throw new ClusterException(ClusterProblem.Conflict, $"collection '{name}' already has a document '{taken}'; use PUT to replace it", $"documents[{index}].id");
            }
        }
        var chunker = new DocumentEmbedder(biEncoder, layout.SettingsManifest().Chunking);
        IReadOnlyList<EmbeddedDocument> embedded = await Task.Run(() => chunker.Embed(documents, ct), ct);
        var writes = byShard.ToDictionary(g => g.Key, g => new ShardWrite([.. g.Value.Select(x => ShardDocument.Of(embedded[x.i]))], []));
        return new ClusterWriteResult(documents.Count, await WriteAsync(layout, writes, ct));
    }

    /// <summary>Deletes documents by id (absent ones are ignored); acknowledged as <see cref="UpsertAsync"/> is. Returns how many were deleted.</summary>
    public async Task<ClusterWriteResult> DeleteAsync(string name, IReadOnlyCollection<string> ids, CancellationToken ct = default)
    {
        ClusterLayout layout = await LayoutAsync(name, ct);
        var writes = ids.Distinct(StringComparer.Ordinal).GroupBy(layout.ShardOf).ToDictionary(g => g.Key, g => new ShardWrite([], [.. g]));
        var acks = await WriteAsync(layout, writes, ct);
        return new ClusterWriteResult(acks.Values.Sum(a => a.Deleted), acks);
    }

    private async Task<IReadOnlyDictionary<string, ShardAck>> WriteAsync(ClusterLayout layout, Dictionary<int, ShardWrite> writes, CancellationToken ct)
    {
        // The shards' batches go out together; cancellation stops waiting, not a batch a shard has begun.
        var results = await Task.WhenAll(writes.Select(async w =>
        {
            ShardMembers members = ShardMembers.Of(layout, w.Key);
            try
            {
                return (members.Name, Ack: await OnShardAsync(members, shard => shard.WriteAsync(members, w.Value)), Error: (ClusterException?)null);
            }
            catch (ClusterException e)
            {
                return (members.Name, Ack: (ShardAck?)null, Error: e);
            }
        })).WaitAsync(ct);
        var failed = results.Where(r => r.Error is not null).ToList();
        if (failed.Count > 0)
        {
            string done = results.Any(r => r.Ack is not null) ? $" Shards {string.Join(", ", results.Where(r => r.Ack is not null).Select(r => r.Name))} acknowledged their part." : "";
            throw new ClusterException(failed.All(f => f.Error!.Problem == ClusterProblem.Unavailable) ? ClusterProblem.Unavailable : failed[0].Error!.Problem,
                string.Join(" ", failed.Select(f => f.Error!.Message)) + done);
        }
        return results.ToDictionary(r => r.Name, r => r.Ack!, StringComparer.Ordinal);
    }

    public async Task<Document?> GetAsync(string name, string id, CancellationToken ct = default)
    {
        ClusterLayout layout = await LayoutAsync(name, ct);
        ShardMembers members = ShardMembers.Of(layout, layout.ShardOf(id));
        ShardReaders readers = await ShardReads.ReadersAsync(_grains, members, _load, Reads).WaitAsync(ct);
        var (answered, d) = await ShardReads.OnReplicaAsync(_grains, members, _load.LeastLoadedFirst(readers.Nodes), _load, Reads, r => r.GetAsync(id), ct);
        if (answered) return d is null ? null : new Document(d.Id, d.Title, d.Text, d.Metadata);
        throw new ClusterException(ClusterProblem.Unavailable, $"shard {members.Name}, which holds document '{id}', has no replica in sync that answers");
    }

    /// <summary>The collection's dense, BM25 and hybrid first stages (dense and hybrid need this coordinator's query encoder).</summary>
    public async Task<IRetriever> RetrieverAsync(string name, CancellationToken ct = default)
    {
        ClusterLayout layout = await LayoutAsync(name, ct);
        return new CollectionRetriever(new ShardedRetriever(_grains, layout, null, _load, Reads),
            _queryEncoder is null ? null : new ShardedRetriever(_grains, layout, _queryEncoder, _load, Reads));
    }

    /// <summary>query → scatter to the shards → gather the global top N → rerank once → top M.</summary>
    public async Task<SearchResponse> SearchAsync(string name, string query, SearchOptions options, IReranker? reranker = null, CancellationToken ct = default) =>
        await new SearchPipeline(await RetrieverAsync(name, ct), reranker).SearchAsync(query, options, ct);

    private async Task<ShardStatus> ShardStatusAsync(ClusterLayout layout, int shard)
    {
        ShardMembers members = ShardMembers.Of(layout, shard);
        try
        {
            return new ShardStatus(shard, members.Name, await OnShardAsync(members, s => s.StatusAsync(members)));
        }
        catch (ClusterException e) when (e.Problem == ClusterProblem.Unavailable)
        {
            // The shard's grain is moving off a node that died: its replicas say where they stand (none counts as in sync).
            var replicas = await Task.WhenAll(members.Nodes.Select(async node =>
            {
                try
                {
                    var position = await _grains.GetGrain<IShardReplicaGrain>(members.ReplicaKey(node)).PositionAsync().WaitAsync(ReadTimeout);
                    return new ReplicaStatus(node, "unknown", position);
                }
                catch (Exception)
                {
                    return new ReplicaStatus(node, "down", null);
                }
            }));
            return new ShardStatus(shard, members.Name, replicas);
        }
    }

    /// <summary>
    /// A call to a shard's grain. When it cannot be reached (its node died and it has not moved yet, or it timed out) the
    /// caller gets <see cref="ClusterProblem.Unavailable"/> naming the shard: a write may or may not have been applied then.
    /// </summary>
    private async Task<T> OnShardAsync<T>(ShardMembers members, Func<IShardGrain, Task<T>> call)
    {
        try
        {
            return await call(_grains.GetGrain<IShardGrain>(members.Name));
        }
        catch (Exception e) when (e is Orleans.Runtime.OrleansException or TimeoutException)
        {
            throw new ClusterException(ClusterProblem.Unavailable,
                $"shard {members.Name} could not be reached ({e.GetType().Name}: {e.Message}); a write is not acknowledged and may or may not be applied. Retry it (writes by id are idempotent).");
        }
    }

    private static int CheckShard(ClusterLayout layout, int shard) => shard >= 0 && shard < layout.Shards ? shard
        : throw new ClusterException(ClusterProblem.NotFound, $"collection '{layout.Name}' has no shard {shard}; its shards are 0 to {layout.Shards - 1}", "shard");

    /// <summary>Names become folder names on every node: one plain path segment.</summary>
    private static void CheckName(string name)
    {
        if (string.IsNullOrEmpty(name) || name != Path.GetFileName(name) || name.StartsWith('.') || name.Contains('@') || name.Contains('/'))
            throw new ClusterException(ClusterProblem.Invalid, $"\"{name}\" is not a valid collection name: one path segment, not starting with '.', without '/' or '@'", "name");
    }
}
