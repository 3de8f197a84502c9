using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Funnel.Cluster.Grains;

/// <summary>
/// The sequencer of one shard. It holds no durable state: on activation it learns the shard's position from its replicas,
/// hearing from at least R − W + 1 of them so that one of those holds every acknowledged batch (any two sets of W and
/// R − W + 1 replicas share one). Replicas at that position are in sync and serve reads; the others are brought up to date by
/// a copy from an in-sync peer (before each write, and every few seconds) and serve only after it.
/// </summary>
internal sealed class ShardGrain(IOptions<FunnelNodeOptions> options, ILogger<ShardGrain> log) : Grain, IShardGrain
{
    private const int CopyPageSize = 256;
    private static readonly TimeSpan RepairPeriod = TimeSpan.FromSeconds(2);

    private readonly HashSet<string> _inSync = new(StringComparer.Ordinal);
    private ReplicaPosition? _position;
    private ShardMembers? _members;
    private Task? _learning;

    private TimeSpan Timeout => options.Value.ReplicaTimeout;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        this.RegisterGrainTimer(RepairTickAsync, new Orleans.Runtime.GrainTimerCreationOptions(RepairPeriod, RepairPeriod) { KeepAlive = false });
        return Task.CompletedTask;
    }

    private IShardReplicaGrain Replica(ShardMembers members, string node) => GrainFactory.GetGrain<IShardReplicaGrain>(members.ReplicaKey(node));

    public async Task<ShardAck> WriteAsync(ShardMembers members, ShardWrite write)
    {
        await RepairAsync(members);
        if (_inSync.Count < members.WriteQuorum)
            throw new ClusterException(ClusterProblem.Unavailable,
                $"shard {members.Name} has {_inSync.Count} of its {members.Nodes.Length} replicas in sync ({Describe(members)}); a write needs {members.WriteQuorum}. Nothing was written; retry when its nodes are back.");
        long sequence = _position!.Sequence + 1;
        var batchId = Guid.NewGuid();
        string[] targets = [.. _inSync];
        var results = await Task.WhenAll(targets.Select(async node =>
        {
            try
            {
                return (node, Deleted: (int?)await ApplyAsync(members, node, sequence, batchId, write));
            }
            catch (Exception e)
            {
                log.LogWarning("Shard {Shard}: replica on {Node} failed batch {Sequence}: {Error}", members.Name, node, sequence, e.Message);
                return (node, Deleted: (int?)null);
            }
        }));
        // Replicas that may or may not hold the batch are out of sync until they are copied again.
        foreach (var (node, deleted) in results)
            if (deleted is null) _inSync.Remove(node);
        _position = new ReplicaPosition(sequence, batchId, 0);
        string[] acked = [.. results.Where(r => r.Deleted is not null).Select(r => r.node)];
        if (acked.Length < members.WriteQuorum)
        {
            throw new ClusterException(ClusterProblem.Unavailable,
                $"shard {members.Name}: {acked.Length} of {members.WriteQuorum} required replicas made the write durable ({string.Join(", ", acked)}); " +
                "it is not acknowledged and may be applied on some replicas. Retry it (writes by id are idempotent).");
        }
        return new ShardAck(sequence, acked, results.First(r => r.Deleted is not null).Deleted!.Value);
    }

    /// <summary>
    /// One batch on one replica. A message refused on the way (<see cref="Coordination.ShardReads.IsLostOnTheWay"/>: while a
    /// dead silo is not yet declared dead, it can hold the grain directory's entry for a healthy replica) is sent again after
    /// a pause, within <see cref="Timeout"/>; the replica applies a batch only once. Without this, a write to a shard whose
    /// replicas are all up was refused, and a healthy replica copied in full, for the seconds a node takes to be declared dead.
    /// </summary>
    private async Task<int> ApplyAsync(ShardMembers members, string node, long sequence, Guid batchId, ShardWrite write)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            try
            {
                TimeSpan left = Timeout - clock.Elapsed;
                return await Replica(members, node).ApplyAsync(sequence, batchId, write).WaitAsync(left > TimeSpan.Zero ? left : TimeSpan.Zero);
            }
            catch (Exception e) when (Coordination.ShardReads.IsLostOnTheWay(e) && clock.Elapsed + Coordination.ShardReads.LostMessagePause < Timeout)
            {
                await Task.Delay(Coordination.ShardReads.LostMessagePause);
            }
        }
    }

    public async Task<string[]> ExistingAsync(ShardMembers members, string[] ids)
    {
        await LearnAsync(members);
        foreach (string node in _inSync.ToArray())
        {
            try
            {
                return await Replica(members, node).ExistingAsync(ids).WaitAsync(Timeout);
            }
            catch (Exception e) when (e is not ClusterException { Problem: ClusterProblem.NotFound })
            {
                // A message lost on the way says nothing about the replica: the next one is asked, and this one stays in sync.
                if (!Coordination.ShardReads.IsLostOnTheWay(e)) _inSync.Remove(node);
            }
        }
        throw new ClusterException(ClusterProblem.Unavailable, $"shard {members.Name} has no replica in sync that answered ({Describe(members)})");
    }

    public async Task<ShardReaders> ReadersAsync(ShardMembers members)
    {
        await LearnAsync(members);
        return new ShardReaders([.. _inSync], _position?.Sequence ?? 0);
    }

    public Task ReportDownAsync(string node)
    {
        _inSync.Remove(node);
        return Task.CompletedTask;
    }

    public async Task<ReplicaStatus[]> StatusAsync(ShardMembers members)
    {
        await LearnAsync(members);
        return await Task.WhenAll(members.Nodes.Select(async node =>
        {
            ReplicaPosition? position = await TryPositionAsync(members, node);
            string state = position is null ? "down" : _inSync.Contains(node) ? "in-sync" : "catching-up";
            return new ReplicaStatus(node, state, position);
        }));
    }

    /// <summary>Copies an in-sync replica onto every reachable replica that is not in sync. Runs in the grain's turn, so no
    /// batch is written while a copy is made: the copy is exactly the source's state at the shard's position.</summary>
    public async Task RepairAsync(ShardMembers members)
    {
        await LearnAsync(members);
        if (_inSync.Count == members.Nodes.Length) return;
        foreach (string node in members.Nodes.Where(n => !_inSync.Contains(n)))
        {
            ReplicaPosition? position = await TryPositionAsync(members, node);
            if (position is null) continue;
            try
            {
                // A replica that only missed reads (reported down by a coordinator, or slow) holds the shard's last batch: it
                // comes back as it is. Any other needs a copy from an in-sync peer.
                bool current = position.Sequence == _position!.Sequence && position.BatchId == _position.BatchId;
                if (!current)
                {
                    if (_inSync.Count == 0) continue;
                    await CopyAsync(members, _inSync.First(), node);
                }
                _inSync.Add(node);
                log.LogInformation("Shard {Shard}: replica on {Node} caught up at batch {Sequence}", members.Name, node, _position!.Sequence);
            }
            catch (Exception e)
            {
                log.LogWarning("Shard {Shard}: catching up the replica on {Node} failed: {Error}", members.Name, node, e.Message);
            }
        }
    }

    private async Task CopyAsync(ShardMembers members, string source, string target)
    {
        IShardReplicaGrain from = Replica(members, source), to = Replica(members, target);
        string[] ids = await from.ExportIdsAsync();
        await to.BeginImportAsync();
        foreach (string[] page in ids.Chunk(CopyPageSize))
            await to.ImportAsync(await from.ExportAsync(page));
        await to.CommitImportAsync(_position!);
    }

    private async Task RepairTickAsync(CancellationToken cancellationToken)
    {
        if (_members is not { } members || _inSync.Count == members.Nodes.Length) return;
        try
        {
            await RepairAsync(members);
        }
        catch (ClusterException e)
        {
            log.LogWarning("Shard {Shard}: {Problem}", members.Name, e.Message);
        }
    }

    /// <summary>Learns the shard's position once per activation, and again whenever no replica is in sync.</summary>
    private Task LearnAsync(ShardMembers members)
    {
        _members = members;
        if (_position is not null && _inSync.Count > 0) return Task.CompletedTask;
        return _learning ??= Learn(members);

        async Task Learn(ShardMembers m)
        {
            try
            {
                var positions = (await Task.WhenAll(m.Nodes.Select(async n => (Node: n, Position: await TryPositionAsync(m, n)))))
                    .Where(p => p.Position is not null).ToList();
                int needed = m.Nodes.Length - m.WriteQuorum + 1;
                if (positions.Count < needed)
                    throw new ClusterException(ClusterProblem.Unavailable,
                        $"shard {m.Name}: {positions.Count} of its {m.Nodes.Length} replicas answer; {needed} must, to be sure of holding every acknowledged write");
                long latest = positions.Max(p => p.Position!.Sequence);
                // Replicas at the latest number that hold different batches (one applied a batch that was never acknowledged,
                // before a restart of this grain): the larger group wins, the others are copied.
                var group = positions.Where(p => p.Position!.Sequence == latest).GroupBy(p => p.Position!.BatchId)
                    .OrderByDescending(g => g.Count()).First();
                _inSync.Clear();
                foreach (var p in group) _inSync.Add(p.Node);
                _position = group.First().Position! with { Documents = 0 };
            }
            finally
            {
                _learning = null;
            }
        }
    }

    private async Task<ReplicaPosition?> TryPositionAsync(ShardMembers members, string node)
    {
        try
        {
            return await Replica(members, node).PositionAsync().WaitAsync(Timeout);
        }
        catch (Exception e) when (e is not ClusterException { Problem: ClusterProblem.NotFound })
        {
            return null;
        }
    }

    private string Describe(ShardMembers members) =>
        string.Join(", ", members.Nodes.Select(n => $"{n}: {(_inSync.Contains(n) ? "in sync" : "down or catching up")}"));
}
