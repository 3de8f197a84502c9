using Funnel.Cluster.Grains;
using Funnel.Cluster.Placement;
using Funnel.Inference;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Hosting;
using Orleans.Runtime;

namespace Funnel.Cluster;

/// <summary>Makes an Orleans silo a Funnel node: its replicas, the placement of replicas on named nodes, and the check that
/// the cluster it joins runs the same Funnel version and bi-encoder.</summary>
public static class FunnelNodeHosting
{
    public static ISiloBuilder AddFunnelNode(this ISiloBuilder silo, Action<FunnelNodeOptions> configure)
    {
        silo.Services.Configure(configure);
        silo.Services.AddPlacementDirector<NodePlacement>(sp => new NodePlacementDirector(sp.GetRequiredService<IClusterMembershipService>()));
        silo.Services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>, JoinCheck>();
        return silo;
    }
}

/// <summary>
/// Refuses to join a cluster whose nodes run another Funnel version (grain interfaces and formats may differ) or another
/// bi-encoder (their vectors are not comparable), or one that already has a node of this name: the silo's start fails with
/// a <see cref="ClusterException"/> that names the other node and what differs.
/// </summary>
internal sealed class JoinCheck(IOptions<FunnelNodeOptions> options, ILocalSiloDetails local, IClusterMembershipService membership,
    IGrainFactory grains, ILogger<JoinCheck> log) : ILifecycleParticipant<ISiloLifecycle>
{
    public void Participate(ISiloLifecycle lifecycle) => lifecycle.Subscribe(nameof(JoinCheck), ServiceLifecycleStage.Active, CheckAsync);

    private async Task CheckAsync(CancellationToken ct)
    {
        FunnelNodeOptions mine = options.Value;
        // A member at this node's own endpoint is its previous incarnation (a crash not yet noticed), not another node.
        var others = membership.CurrentSnapshot.Members.Values
            .Where(m => m.Status == SiloStatus.Active && !m.SiloAddress.Endpoint.Equals(local.SiloAddress.Endpoint)).ToList();
        if (others.FirstOrDefault(m => m.Name == local.Name) is { } twin)
            throw new ClusterException(ClusterProblem.Conflict,
                $"node name '{local.Name}' is taken by the node at {twin.SiloAddress.Endpoint}; give each node its own --node-name (replicas are placed on names)");
        foreach (ClusterMember other in others)
        {
            if (await DescribeAsync(other.Name, ct) is not { } theirs)
            {
                log.LogWarning("Node {Node} did not answer the join check (it may be going down); not compared", other.Name);
                continue;
            }
            if (theirs.FunnelVersion != mine.FunnelVersion)
                throw new ClusterException(ClusterProblem.Conflict,
                    $"cannot join the cluster: node '{theirs.Name}' runs Funnel {theirs.FunnelVersion}, this node {mine.FunnelVersion}; every node must run the same version");
            ModelFingerprint? their = theirs.BiEncoderJson is null ? null : FunnelNodeOptions.ParseFingerprint(theirs.BiEncoderJson);
            if (their is null != mine.BiEncoder is null || their is not null && !their.IsCompatibleWith(mine.BiEncoder!))
                throw new ClusterException(ClusterProblem.Conflict,
                    $"cannot join the cluster: node '{theirs.Name}' embeds with bi-encoder {Name(their)}, this node with {Name(mine.BiEncoder)}; " +
                    "their vectors are not comparable, so every node must serve the same bi-encoder");
        }
        log.LogInformation("Node {Node} joined a cluster of {Count} other node(s) running Funnel {Version}", local.Name, others.Count, mine.FunnelVersion);
    }

    /// <summary>A node's description, retried for a few seconds: a joining node's view of who is up settles after it joins.</summary>
    private async Task<NodeInfo?> DescribeAsync(string node, CancellationToken ct)
    {
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                return await grains.GetGrain<INodeGrain>(node).DescribeAsync().WaitAsync(TimeSpan.FromSeconds(10), ct);
            }
            catch (Exception e) when (e is ClusterException { Problem: ClusterProblem.Unavailable } or TimeoutException or SiloUnavailableException && attempt < 20)
            {
                await Task.Delay(500, ct);
            }
            catch (Exception e) when (e is ClusterException { Problem: ClusterProblem.Unavailable } or TimeoutException or SiloUnavailableException)
            {
                return null;
            }
        }
    }

    private static string Name(ModelFingerprint? f) =>
        f is null ? "none" : $"{Path.GetFileName(Path.TrimEndingDirectorySeparator(f.Model))} (weights sha256 {f.WeightsSha256[..Math.Min(12, f.WeightsSha256.Length)]}…)";
}
