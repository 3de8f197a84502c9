using System.Text.Json;
using Funnel.Cluster.Placement;
using Funnel.IO;
using Funnel.Retrieval;
using Microsoft.Extensions.Options;

namespace Funnel.Cluster.Grains;

/// <summary>
/// A replica: a local <see cref="Collection"/> in <c>{data}/{collection}/shard-{s}/collection</c> on its node, and
/// <c>position.json</c> beside it (the last shard batch applied, written after the batch is durable: a crash between the two
/// leaves a batch applied twice, which is harmless because upserts and deletes are idempotent). Searches interleave with
/// writes (the collection allows concurrent searches); writes come one at a time from the shard grain.
/// </summary>
[NodePlacement]
internal sealed class ShardReplicaGrain(IOptions<FunnelNodeOptions> options) : Grain, IShardReplicaGrain
{
    private const string PositionFile = "position.json";
    private Collection? _collection;
    private ReplicaPosition _position = new(0, Guid.Empty, 0);
    private string _folder = "";
    private ClusterLayout? _layout;
    private Collection? _incoming;
    /// <summary>What the last batch deleted, for a batch sent again (0 after a restart: the count is not stored).</summary>
    private int _lastDeleted;

    private string Incoming => _folder + ".incoming";

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        string key = this.GetPrimaryKeyString();
        string shardName = key[..key.LastIndexOf('@')];
        string collection = shardName[..shardName.LastIndexOf('/')];
        int shard = int.Parse(shardName[(shardName.LastIndexOf('/') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        string root = Path.Combine(options.Value.DataDirectory, collection);
        _layout = ClusterLayout.TryRead(root) ?? throw new ClusterException(ClusterProblem.NotFound, $"node '{NodePlacement.NodeOf(key)}' has no collection '{collection}'");
        if (shard < 0 || shard >= _layout.Shards) throw new ClusterException(ClusterProblem.NotFound, $"collection '{collection}' has no shard {shard} (it has {_layout.Shards})");
        _folder = Path.Combine(root, $"shard-{shard}");
        // An import that did not commit is discarded; a swap cut short between its two renames is undone.
        if (Directory.Exists(Incoming)) Directory.Delete(Incoming, recursive: true);
        if (!Directory.Exists(_folder) && Directory.Exists(_folder + ".old")) Directory.Move(_folder + ".old", _folder);
        if (Directory.Exists(_folder + ".old")) Directory.Delete(_folder + ".old", recursive: true);
        string data = Path.Combine(_folder, "collection");
        _collection = File.Exists(Path.Combine(data, CollectionManifest.FileName))
            ? Collection.Open(data)
            : Collection.Create(data, _layout.BiEncoder, _layout.CollectionOptions());
        _position = ReadPosition(_folder) ?? new ReplicaPosition(0, Guid.Empty, 0);
        return Task.CompletedTask;
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        _incoming?.Dispose();
        _collection?.Dispose();
        return Task.CompletedTask;
    }

    private Collection Local => _collection ?? throw new ClusterException(ClusterProblem.Unavailable, $"replica {this.GetPrimaryKeyString()} is importing a copy");

    public Task<ReplicaPosition> PositionAsync() => Task.FromResult(_position with { Documents = Local.DocumentCount });

    public async Task<int> ApplyAsync(long sequence, Guid batchId, ShardWrite write)
    {
        // The shard sends a batch again when its message, or the reply, may have been lost on the way: once applied, it is
        // not applied twice.
        if (sequence == _position.Sequence && batchId == _position.BatchId) return _lastDeleted;
        if (sequence != _position.Sequence + 1)
            throw new ClusterException(ClusterProblem.Conflict, $"replica {this.GetPrimaryKeyString()} is at batch {_position.Sequence}; batch {sequence} does not follow it");
        Collection local = Local;
        if (write.Upserts.Length > 0) await local.UpsertAsync([.. write.Upserts.Select(d => d.ToEmbedded())]);
        int deleted = write.Deletes.Length > 0 ? await local.DeleteAsync(write.Deletes) : 0;
        SetPosition(_folder, new ReplicaPosition(sequence, batchId, 0));
        _lastDeleted = deleted;
        return deleted;
    }

    public Task<string[]> ExistingAsync(string[] ids) => Task.FromResult(ids.Where(id => Local.Get(id) is not null).ToArray());

    public Task<ShardHit[]> SearchDenseAsync(float[] vector, ShardQuery query)
    {
        Collection local = Local;
        SearchOptions options = query.ToOptions();
        IReadOnlyList<DocumentHit> hits = Exclusion.Search(options, k => local.SearchDense(vector, k, options.Filter, options.EfSearch ?? 0));
        return Task.FromResult(Hits(local, hits, dense: true));
    }

    public Task<ShardBm25Statistics> Bm25StatisticsAsync(string query) => Task.FromResult(ShardBm25Statistics.Of(Local.Bm25Statistics(query)));

    public Task<ShardHit[]> SearchBm25Async(string query, ShardQuery options, ShardBm25Statistics statistics)
    {
        Collection local = Local;
        SearchOptions search = options.ToOptions();
        var global = statistics.ToStatistics();
        IReadOnlyList<DocumentHit> hits = Exclusion.Search(search, k => local.SearchBm25(query, k, search.Filter, global));
        return Task.FromResult(Hits(local, hits, dense: false));
    }

    /// <summary>Hits with their documents (a dense hit's passage is its best chunk); documents deleted since the search are dropped.</summary>
    private static ShardHit[] Hits(Collection local, IReadOnlyList<DocumentHit> hits, bool dense)
    {
        var found = new List<ShardHit>(hits.Count);
        foreach (DocumentHit hit in hits)
            if (local.Get(hit.DocumentId) is { } document)
                found.Add(ShardHit.Of(Candidate.Of(document, hit.Score, dense ? local.GetPassage(hit.DocumentId, hit.ChunkIndex) : null), hit.Score));
        return [.. found];
    }

    public Task<ShardDocument?> GetAsync(string id) =>
        Task.FromResult(Local.Get(id) is { } d ? new ShardDocument(d.Id, d.Title, d.Text, new Dictionary<string, string>(d.Metadata, StringComparer.Ordinal), [], [], []) : null);

    public Task<string[]> ExportIdsAsync() => Task.FromResult(Local.DocumentIds().Order(StringComparer.Ordinal).ToArray());

    public Task<ShardDocument[]> ExportAsync(string[] ids) =>
        Task.FromResult(ids.Select(Local.GetEmbedded).OfType<EmbeddedDocument>().Select(ShardDocument.Of).ToArray());

    public Task BeginImportAsync()
    {
        _incoming?.Dispose();
        if (Directory.Exists(Incoming)) Directory.Delete(Incoming, recursive: true);
        _incoming = Collection.Create(Path.Combine(Incoming, "collection"), _layout!.BiEncoder, _layout.CollectionOptions());
        return Task.CompletedTask;
    }

    public async Task ImportAsync(ShardDocument[] documents)
    {
        Collection incoming = _incoming ?? throw new InvalidOperationException("no import was begun");
        await incoming.UpsertAsync([.. documents.Select(d => d.ToEmbedded())]);
    }

    public Task CommitImportAsync(ReplicaPosition position)
    {
        Collection incoming = _incoming ?? throw new InvalidOperationException("no import was begun");
        incoming.Checkpoint();
        incoming.Dispose();
        _incoming = null;
        SetPosition(Incoming, position);
        // Two renames: a crash between them is undone on activation (the old copy comes back, and is repaired again).
        _collection?.Dispose();
        _collection = null;
        Directory.Move(_folder, _folder + ".old");
        Directory.Move(Incoming, _folder);
        Directory.Delete(_folder + ".old", recursive: true);
        _collection = Collection.Open(Path.Combine(_folder, "collection"));
        _position = position;
        return Task.CompletedTask;
    }

    public Task DropAsync()
    {
        _incoming?.Dispose();
        _incoming = null;
        _collection?.Dispose();
        _collection = null;
        if (Directory.Exists(_folder)) Directory.Delete(_folder, recursive: true);
        DeactivateOnIdle();
        return Task.CompletedTask;
    }

    private void SetPosition(string folder, ReplicaPosition position)
    {
        DurableFile.WriteAtomic(Path.Combine(folder, PositionFile), stream => JsonSerializer.Serialize(stream, position with { Documents = 0 }, CollectionManifest.Json));
        if (folder == _folder) _position = position;
    }

    private static ReplicaPosition? ReadPosition(string folder)
    {
        string path = Path.Combine(folder, PositionFile);
        if (!File.Exists(path)) return null;
        try
        {
            return JsonSerializer.Deserialize<ReplicaPosition>(File.ReadAllBytes(path), CollectionManifest.Json);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"'{path}' is not a valid replica position: {e.Message}", e);
        }
    }
}
