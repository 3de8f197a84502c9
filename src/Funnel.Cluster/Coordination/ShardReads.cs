using System.Diagnostics;
using Funnel.Cluster.Grains;
using Orleans.Runtime.Messaging;

namespace Funnel.Cluster.Coordination;

/// <summary>Which replicas of a shard a coordinator may read from, and a read on one of them.</summary>
internal static class ShardReads
{
    /// <summary>
    /// How long to wait before asking again a replica whose message was lost on the way. A gateway or forwarding silo that
    /// went down loses every message it held, also those to replicas on healthy nodes; by then the sender has dropped it.
    /// </summary>
    internal static readonly TimeSpan LostMessagePause = TimeSpan.FromMilliseconds(500);

    /// <summary>
    /// The shard grain's in-sync replicas. When it fails or is slow to answer (its node just died and it has not moved yet)
    /// the replicas' own positions are asked too: having heard from R − W + 1 of them, those at the latest batch hold every
    /// acknowledged write (the shard grain's own rule when it starts). None when neither answers.
    /// </summary>
    public static async Task<ShardReaders> ReadersAsync(IGrainFactory grains, ShardMembers members, ReplicaLoad load, ReadPolicy policy)
    {
        Task<ShardReaders> fromGrain = grains.GetGrain<IShardGrain>(members.Name).ReadersAsync(members).WaitAsync(policy.Timeout);
        using (var hedge = new CancellationTokenSource())
        {
            await Task.WhenAny(fromGrain, Task.Delay(policy.HedgeAfter, hedge.Token));
            hedge.Cancel();
        }
        if (fromGrain.IsCompletedSuccessfully) return fromGrain.Result;
        if (fromGrain.Exception?.InnerException is ClusterException { Problem: ClusterProblem.NotFound } notFound)
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(notFound);

        Task<ShardReaders> fromReplicas = FromPositionsAsync(grains, members, load, policy);
        if (await Task.WhenAny(fromGrain, fromReplicas) == fromReplicas && fromReplicas.Result.Nodes.Length > 0) return fromReplicas.Result;
        try
        {
            return await fromGrain;
        }
        catch (Exception e) when (e is not ClusterException { Problem: ClusterProblem.NotFound })
        {
            return await fromReplicas;
        }
    }

    /// <summary>Once R − W + 1 replicas have told their positions, the others get a hedge delay more to answer: a node that
    /// died may leave its call hanging until the timeout.</summary>
    private static async Task<ShardReaders> FromPositionsAsync(IGrainFactory grains, ShardMembers members, ReplicaLoad load, ReadPolicy policy)
    {
        int needed = members.Nodes.Length - members.WriteQuorum + 1;
        var pending = members.Nodes.ToDictionary(n => OnReplicaAsync(grains, members, [n], load, policy, r => r.PositionAsync()), n => n);
        var positions = new List<(string Node, ReplicaPosition Position)>();
        Task? graceOver = null;
        while (pending.Count > 0)
        {
            Task done = await Task.WhenAny(graceOver is null ? pending.Keys : [.. pending.Keys, graceOver]);
            if (done == graceOver) break;
            var answer = (Task<(bool Answered, ReplicaPosition Position)>)done;
            if (answer.Result.Answered) positions.Add((pending[answer], answer.Result.Position));
            pending.Remove(answer);
            if (positions.Count >= needed) graceOver ??= Task.Delay(policy.HedgeAfter);
        }
        if (positions.Count < needed) return new ShardReaders([], 0);
        long latest = positions.Max(p => p.Position.Sequence);
        var group = positions.Where(p => p.Position.Sequence == latest).GroupBy(p => p.Position.BatchId).OrderByDescending(g => g.Count()).First();
        return new ShardReaders([.. group.Select(p => p.Node)], latest);
    }

    /// <summary>
    /// Runs <paramref name="call"/> on the replicas of <paramref name="nodes"/>, in that order, until one answers, as a hedged
    /// request (a read is idempotent): the next replica is asked when none is being waited for or the last one asked has not
    /// answered within <see cref="ReadPolicy.HedgeAfter"/>, and the first answer wins. A replica is asked a second time once it
    /// has not answered within the hedge delay, and again after a pause each time its message was lost on the way
    /// (<see cref="IsLostOnTheWay"/>), until <see cref="ReadPolicy.Timeout"/> from the start of the read. A silo that died drops
    /// the messages it held, also those for replicas on healthy nodes, at once or silently (they end only at their timeout);
    /// until the cluster declares it dead, even a message to a healthy node can be refused, when the grain directory's
    /// partition that locates its replica was on the dead silo. A second message takes another route, or finds the directory
    /// repaired. A replica that failed for good (a timeout, its node not up, its own error) is reported down to the shard, which
    /// stops reading from it until it has caught up; one whose messages were only lost is not, since that says nothing about
    /// it. Calls overtaken by another answer are abandoned.
    /// </summary>
    /// <returns>Whether a replica answered, and its answer.</returns>
    public static async Task<(bool Answered, T Value)> OnReplicaAsync<T>(IGrainFactory grains, ShardMembers members, IEnumerable<string> nodes,
        ReplicaLoad load, ReadPolicy policy, Func<IShardReplicaGrain, Task<T>> call, CancellationToken ct = default)
    {
        string[] order = [.. nodes];
        var asked = order.ToDictionary(n => n, _ => 0, StringComparer.Ordinal);
        var askAgainAt = new Dictionary<string, TimeSpan>(StringComparer.Ordinal); // from the start of the read; absent: never
        var running = new Dictionary<Task<T>, string>();
        var clock = Stopwatch.StartNew();
        TimeSpan lastAsk = TimeSpan.Zero;
        using var wake = CancellationTokenSource.CreateLinkedTokenSource(ct);
        try
        {
            while (true)
            {
                TimeSpan now = clock.Elapsed;
                if (NextToAsk(now) is { } next)
                {
                    running.Add(CallAsync(next), next);
                    asked[next]++;
                    lastAsk = now;
                    if (asked[next] == 1) askAgainAt[next] = now + policy.HedgeAfter;
                    else askAgainAt.Remove(next);
                    continue;
                }
                TimeSpan? until = NextAskAt() - now;
                if (running.Count == 0 && until is null) return (false, default!);
                // The delay is also what a cancelled read wakes on: replicas do not see the token.
                TimeSpan delay = until is null ? Timeout.InfiniteTimeSpan : until.Value < TimeSpan.Zero ? TimeSpan.Zero : until.Value;
                Task done = await Task.WhenAny([.. running.Keys, Task.Delay(delay, wake.Token)]);
                ct.ThrowIfCancellationRequested();
                if (done is not Task<T> answer) continue; // time to ask another
                string node = running[answer];
                running.Remove(answer);
                if (answer.IsCompletedSuccessfully) return (true, answer.Result);
                Exception e = answer.Exception?.InnerException ?? new TaskCanceledException(answer);
                if (e is ClusterException { Problem: ClusterProblem.NotFound } or OperationCanceledException)
                    System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e);
                if (IsLostOnTheWay(e))
                {
                    TimeSpan again = clock.Elapsed + LostMessagePause;
                    if (again < policy.Timeout) askAgainAt[node] = again;
                    else askAgainAt.Remove(node);
                }
                else
                {
                    askAgainAt.Remove(node);
                    if (!running.ContainsValue(node)) ReportDown(grains, members, node);
                }
            }
        }
        finally
        {
            wake.Cancel(); // the pending delay's timer
            foreach (Task<T> abandoned in running.Keys)
                _ = abandoned.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        }

        // A replica not yet asked comes first, once nothing is awaited or the last one asked is overdue; then asks again.
        string? NextToAsk(TimeSpan now) =>
            order.FirstOrDefault(n => asked[n] == 0 && (running.Count == 0 || now >= lastAsk + policy.HedgeAfter))
            ?? order.FirstOrDefault(n => askAgainAt.TryGetValue(n, out TimeSpan at) && now >= at);

        TimeSpan? NextAskAt()
        {
            TimeSpan? at = order.Any(n => asked[n] == 0) ? lastAsk + policy.HedgeAfter : null;
            foreach (TimeSpan again in askAgainAt.Values)
                if (at is null || again < at) at = again;
            return at;
        }

        async Task<T> CallAsync(string node)
        {
            using var _ = load.Enter(node);
            return await call(grains.GetGrain<IShardReplicaGrain>(members.ReplicaKey(node))).WaitAsync(policy.Timeout, ct);
        }
    }

    /// <summary>Tells the shard (one-way, without waiting: its node may be the one that is down).</summary>
    public static void ReportDown(IGrainFactory grains, ShardMembers members, string node) =>
        _ = grains.GetGrain<IShardGrain>(members.Name).ReportDownAsync(node).ContinueWith(_ => { }, TaskScheduler.Default);

    /// <summary>
    /// Orleans dropped the message in transit (the connection to a gateway or silo on the way closed, or a silo shutting down
    /// rejected it): this says nothing about the replica it was for. A timeout or the replica's own error does.
    /// </summary>
    internal static bool IsLostOnTheWay(Exception e) => e is OrleansMessageRejectionException or ConnectionFailedException;
}

/// <summary>How a coordinator waits for replicas.</summary>
/// <param name="Timeout">How long a replica or shard grain may take to answer before it counts as failed.</param>
/// <param name="HedgeAfter">How long a read waits for one replica before asking the next one too.</param>
internal readonly record struct ReadPolicy(TimeSpan Timeout, TimeSpan HedgeAfter);
