using Orleans.Concurrency;

namespace Funnel.Cluster.Grains;

/// <summary>A shard's replica nodes and write quorum, as the layout says: what a shard grain needs from it.</summary>
[GenerateSerializer, Immutable, Alias("funnel.shard-members")]
public sealed record ShardMembers([property: Id(0)] string Collection, [property: Id(1)] int Shard, [property: Id(2)] string[] Nodes, [property: Id(3)] int WriteQuorum)
{
    public static ShardMembers Of(ClusterLayout layout, int shard) => new(layout.Name, shard, layout.Nodes[shard], layout.WriteQuorum);

    public string Name => $"{Collection}/{Shard}";

    public string ReplicaKey(string node) => $"{Collection}/{Shard}@{node}";
}

/// <summary>A replica as its shard sees it: the node, whether it serves reads, and its position (null: unreachable).</summary>
[GenerateSerializer, Immutable, Alias("funnel.replica-status")]
public sealed record ReplicaStatus([property: Id(0)] string Node, [property: Id(1)] string State, [property: Id(2)] ReplicaPosition? Position);

/// <summary>One node of the cluster (key: its name), on that node: what it runs, and the layouts of the collections it knows.</summary>
[Alias("funnel.node")]
public interface INodeGrain : IGrainWithStringKey
{
    [AlwaysInterleave, Alias("describe")] Task<NodeInfo> DescribeAsync();

    [AlwaysInterleave, Alias("layouts")] Task<ClusterLayout[]> LayoutsAsync();

    [Alias("save-layout")] Task SaveLayoutAsync(ClusterLayout layout);

    /// <summary>Forgets a collection: removes its layout and whatever is left of its folder (its replicas were dropped first).</summary>
    [Alias("forget")] Task ForgetAsync(string collection);
}

/// <summary>Creates and deletes one collection (key: its name): one activation per name serializes them.</summary>
[Alias("funnel.collection")]
public interface ICollectionGrain : IGrainWithStringKey
{
    [Alias("create")] Task<ClusterLayout> CreateAsync(int shards, int replicas, int writeQuorum, string settings);

    [Alias("delete")] Task DeleteAsync();
}

/// <summary>
/// One shard of a collection (key <c>collection/shard</c>): the sequencer of its writes. Every batch gets the next sequence
/// number and goes to all in-sync replicas; it is acknowledged once <see cref="ShardMembers.WriteQuorum"/> made it durable.
/// Replicas that missed batches catch up from an in-sync peer before they serve again.
/// </summary>
[Alias("funnel.shard")]
public interface IShardGrain : IGrainWithStringKey
{
    [Alias("write")] Task<ShardAck> WriteAsync(ShardMembers members, ShardWrite write);

    /// <summary>The ids among <paramref name="ids"/> the shard holds (for adds that must not replace).</summary>
    [Alias("existing")] Task<string[]> ExistingAsync(ShardMembers members, string[] ids);

    [AlwaysInterleave, Alias("readers")] Task<ShardReaders> ReadersAsync(ShardMembers members);

    /// <summary>A coordinator could not reach this replica: stop reading from it until it has caught up.</summary>
    [AlwaysInterleave, OneWay, Alias("report-down")] Task ReportDownAsync(string node);

    [Alias("status")] Task<ReplicaStatus[]> StatusAsync(ShardMembers members);

    /// <summary>Brings replicas that are behind up to date (a copy from an in-sync peer).</summary>
    [Alias("repair")] Task RepairAsync(ShardMembers members);
}

/// <summary>One replica of a shard (key <c>collection/shard@node</c>), on its node: a local collection and its place in the shard's history.</summary>
[Alias("funnel.replica")]
public interface IShardReplicaGrain : IGrainWithStringKey
{
    [AlwaysInterleave, Alias("position")] Task<ReplicaPosition> PositionAsync();

    /// <summary>Applies batch <paramref name="sequence"/> (which must follow the replica's last); returns documents deleted.</summary>
    [Alias("apply")] Task<int> ApplyAsync(long sequence, Guid batchId, ShardWrite write);

    [AlwaysInterleave, Alias("existing")] Task<string[]> ExistingAsync(string[] ids);

    [AlwaysInterleave, Alias("dense")] Task<ShardHit[]> SearchDenseAsync(float[] vector, ShardQuery query);

    [AlwaysInterleave, Alias("bm25-statistics")] Task<ShardBm25Statistics> Bm25StatisticsAsync(string query);

    [AlwaysInterleave, Alias("bm25")] Task<ShardHit[]> SearchBm25Async(string query, ShardQuery options, ShardBm25Statistics statistics);

    [AlwaysInterleave, Alias("get")] Task<ShardDocument?> GetAsync(string id);

    [AlwaysInterleave, Alias("export-ids")] Task<string[]> ExportIdsAsync();

    [AlwaysInterleave, Alias("export")] Task<ShardDocument[]> ExportAsync(string[] ids);

    /// <summary>Starts replacing this replica's contents by a copy (into a new folder; the old one serves nothing meanwhile).</summary>
    [Alias("begin-import")] Task BeginImportAsync();

    [Alias("import")] Task ImportAsync(ShardDocument[] documents);

    /// <summary>Makes the copy this replica's contents, at the peer's <paramref name="position"/>.</summary>
    [Alias("commit-import")] Task CommitImportAsync(ReplicaPosition position);

    /// <summary>Closes and deletes this replica (the collection is being deleted).</summary>
    [Alias("drop")] Task DropAsync();
}
