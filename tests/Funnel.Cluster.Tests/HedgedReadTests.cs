using System.Collections.Concurrent;
using System.Diagnostics;
using System.Reflection;
using Funnel.Cluster.Coordination;
using Funnel.Cluster.Grains;
using Orleans.Runtime;

namespace Funnel.Cluster.Tests;

/// <summary>
/// <see cref="ShardReads.OnReplicaAsync"/> against scripted replicas: which failures it asks again, which it reports down to
/// the shard, and when it gives up. A replica's script is its answers in order; each call takes the next one.
/// </summary>
public sealed class HedgedReadTests
{
    private static readonly ShardMembers Members = new("docs", 0, ["a", "b"], 2);
    private static readonly ReadPolicy Policy = new(Timeout: TimeSpan.FromSeconds(5), HedgeAfter: TimeSpan.FromSeconds(1));
    private static readonly ReplicaPosition AtSeven = new(7, Guid.NewGuid(), 13);

    /// <summary>What Orleans throws when the grain directory's silo for a replica cannot be reached (its constructor is internal).</summary>
    private static Exception Lost() => (Exception)Activator.CreateInstance(typeof(OrleansMessageRejectionException), BindingFlags.NonPublic | BindingFlags.Instance,
        null, ["Exception while sending message: unable to connect to the directory's silo"], null)!;

    [Fact]
    public async Task A_replica_whose_messages_are_lost_until_the_directory_recovers_answers_and_is_not_reported_down()
    {
        // The other replica's node is dead; this one's messages are refused three times over (its directory partition was
        // on the dead silo), then delivered.
        var grains = ScriptedGrains.Create(new()
        {
            ["a"] = [Lost(), Lost(), Lost(), AtSeven],
            ["b"] = [new SiloUnavailableException(), new SiloUnavailableException()],
        });
        var (answered, position) = await ShardReads.OnReplicaAsync(grains, Members, ["a", "b"], new ReplicaLoad(), Policy, r => r.PositionAsync());

        Assert.True(answered);
        Assert.Equal(AtSeven, position);
        Assert.Equal(4, ScriptedGrains.Of(grains).Calls("a"));
        Assert.Equal(["b"], ScriptedGrains.Of(grains).ReportedDown);
    }

    [Fact]
    public async Task Lost_messages_are_asked_again_only_until_the_read_timeout_and_report_nobody_down()
    {
        var grains = ScriptedGrains.Create(new() { ["a"] = [.. Enumerable.Range(0, 100).Select(_ => Lost())] });
        var policy = Policy with { Timeout = TimeSpan.FromSeconds(1.2) };
        long start = Stopwatch.GetTimestamp();
        var (answered, _) = await ShardReads.OnReplicaAsync(grains, Members, ["a"], new ReplicaLoad(), policy, r => r.PositionAsync());
        TimeSpan gaveUpAt = Stopwatch.GetElapsedTime(start);

        Assert.False(answered);
        Assert.Empty(ScriptedGrains.Of(grains).ReportedDown);
        // On schedule it asks at 0, 0.5 and 1.0 s; a busy machine may start an ask late, which leaves room for fewer. What
        // holds on any machine: a pause of at least 500 ms after each lost message, and no ask once the next pause would end
        // past the timeout, so the read gives up within a pause of it.
        TimeSpan[] asks = ScriptedGrains.Of(grains).AskedAt("a", start);
        Assert.InRange(asks.Length, 2, 3);
        for (int i = 1; i < asks.Length; i++)
            Assert.True(asks[i] - asks[i - 1] >= ShardReads.LostMessagePause, $"asks at {string.Join(", ", asks)}");
        Assert.True(asks[^1] + ShardReads.LostMessagePause >= policy.Timeout - TimeSpan.FromMilliseconds(50), $"gave up early: asks at {string.Join(", ", asks)}");
        Assert.True(gaveUpAt < policy.Timeout + TimeSpan.FromSeconds(3), $"gave up at {gaveUpAt}");
    }

    [Fact]
    public async Task A_replica_that_fails_with_its_own_error_is_reported_down_and_the_next_one_answers()
    {
        var grains = ScriptedGrains.Create(new()
        {
            ["a"] = [new InvalidOperationException("the replica's collection failed")],
            ["b"] = [AtSeven],
        });
        // A long hedge delay, so that a busy machine cannot blur "at once" with "after the hedge delay".
        var policy = Policy with { HedgeAfter = TimeSpan.FromSeconds(4) };
        var clock = Stopwatch.StartNew();
        var (answered, position) = await ShardReads.OnReplicaAsync(grains, Members, ["a", "b"], new ReplicaLoad(), policy, r => r.PositionAsync());

        Assert.True(answered);
        Assert.Equal(AtSeven, position);
        // Nothing was being waited for once "a" failed: "b" was asked at once, not after the hedge delay.
        Assert.True(clock.Elapsed < policy.HedgeAfter, $"{clock.Elapsed}");
        Assert.Equal(1, ScriptedGrains.Of(grains).Calls("a"));
        Assert.Equal(["a"], ScriptedGrains.Of(grains).ReportedDown);
    }

    [Fact]
    public async Task A_shard_that_is_not_found_ends_the_read_at_once()
    {
        var grains = ScriptedGrains.Create(new()
        {
            ["a"] = [new ClusterException(ClusterProblem.NotFound, "node 'a' has no collection 'docs'")],
            ["b"] = [AtSeven],
        });
        await Assert.ThrowsAsync<ClusterException>(() =>
            ShardReads.OnReplicaAsync(grains, Members, ["a", "b"], new ReplicaLoad(), Policy, r => r.PositionAsync()));
        Assert.Equal(0, ScriptedGrains.Of(grains).Calls("b"));
    }

    /// <summary>A grain factory (a <see cref="DispatchProxy"/>) whose replicas play their scripts and whose shard grain records
    /// the replicas reported down to it. Only the calls a read makes are scripted.</summary>
    public class ScriptedGrains : DispatchProxy
    {
        private Dictionary<string, ConcurrentQueue<object>> _scripts = [];
        private readonly ConcurrentQueue<(string Key, long At)> _asks = new();
        private readonly ConcurrentQueue<string> _reportedDown = new();

        public static IGrainFactory Create(Dictionary<string, object[]> scripts)
        {
            IGrainFactory grains = Create<IGrainFactory, ScriptedGrains>();
            Of(grains)._scripts = scripts.ToDictionary(s => Members.ReplicaKey(s.Key), s => new ConcurrentQueue<object>(s.Value));
            return grains;
        }

        public static ScriptedGrains Of(IGrainFactory grains) => (ScriptedGrains)(object)grains;

        public int Calls(string node) => _asks.Count(a => a.Key == Members.ReplicaKey(node));

        public string[] ReportedDown => [.. _reportedDown];

        /// <summary>When <paramref name="node"/>'s replica was asked, from the timestamp <paramref name="start"/>.</summary>
        public TimeSpan[] AskedAt(string node, long start)
        {
            string key = Members.ReplicaKey(node);
            return [.. _asks.Where(a => a.Key == key).Select(a => Stopwatch.GetElapsedTime(start, a.At))];
        }

        protected override object? Invoke(MethodInfo? method, object?[]? args)
        {
            if (method is not { Name: nameof(IGrainFactory.GetGrain), IsGenericMethod: true } || args?[0] is not string key)
                throw new NotSupportedException($"a read does not call IGrainFactory.{method?.Name}");
            Type grain = method.GetGenericArguments()[0];
            if (grain == typeof(IShardReplicaGrain)) return Grain<IShardReplicaGrain>(key);
            if (grain == typeof(IShardGrain)) return Grain<IShardGrain>(key);
            throw new NotSupportedException($"a read does not call a {grain.Name}");
        }

        private T Grain<T>(string key) where T : class
        {
            T grain = DispatchProxy.Create<T, ScriptedGrain>();
            ((ScriptedGrain)(object)grain).Answer = (method, args) => Answer(key, method, args);
            return grain;
        }

        private Task Answer(string key, MethodInfo method, object?[]? args)
        {
            if (method.Name == nameof(IShardGrain.ReportDownAsync))
            {
                _reportedDown.Enqueue((string)args![0]!);
                return Task.CompletedTask;
            }
            if (method.Name != nameof(IShardReplicaGrain.PositionAsync)) throw new NotSupportedException($"not scripted: {method.Name}");
            _asks.Enqueue((key, Stopwatch.GetTimestamp()));
            if (!_scripts.TryGetValue(key, out var script) || !script.TryDequeue(out object? next))
                return Task.FromException<ReplicaPosition>(new TimeoutException($"{key} has nothing more to answer"));
            return next is Exception e ? Task.FromException<ReplicaPosition>(e) : Task.FromResult((ReplicaPosition)next);
        }
    }

    /// <summary>One grain reference of <see cref="ScriptedGrains"/>.</summary>
    public class ScriptedGrain : DispatchProxy
    {
        internal Func<MethodInfo, object?[]?, Task> Answer { get; set; } = (m, _) => throw new NotSupportedException(m.Name);

        protected override object? Invoke(MethodInfo? method, object?[]? args) => Answer(method!, args);
    }
}
