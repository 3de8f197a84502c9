using Funnel.Cluster.Grains;

namespace Funnel.Cluster.Coordination;

/// <summary>Which replicas of a shard a coordinator may read from.</summary>
internal static class ShardReads
{
    /// <summary>
    /// The shard grain's in-sync replicas; when it cannot answer (its node just died and it has not moved yet), the replicas'
    /// own positions: having heard from R − W + 1 of them, those at the latest batch hold every acknowledged write (the
    /// shard grain's own rule when it starts). None when too few answer.
    /// </summary>
    public static async Task<ShardReaders> ReadersAsync(IGrainFactory grains, ShardMembers members, TimeSpan timeout)
    {
        try
        {
            return await grains.GetGrain<IShardGrain>(members.Name).ReadersAsync(members).WaitAsync(timeout);
        }
        catch (Exception e) when (e is not ClusterException { Problem: ClusterProblem.NotFound })
        {
            var positions = (await Task.WhenAll(members.Nodes.Select(async node =>
            {
                try
                {
                    return (node, Position: (ReplicaPosition?)await grains.GetGrain<IShardReplicaGrain>(members.ReplicaKey(node)).PositionAsync().WaitAsync(timeout));
                }
                catch (Exception)
                {
                    return (node, Position: (ReplicaPosition?)null);
                }
            }))).Where(p => p.Position is not null).ToList();
            if (positions.Count < members.Nodes.Length - members.WriteQuorum + 1) return new ShardReaders([], 0);
            long latest = positions.Max(p => p.Position!.Sequence);
            var group = positions.Where(p => p.Position!.Sequence == latest).GroupBy(p => p.Position!.BatchId).OrderByDescending(g => g.Count()).First();
            return new ShardReaders([.. group.Select(p => p.node)], latest);
        }
    }
}
