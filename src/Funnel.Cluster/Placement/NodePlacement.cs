using Orleans.Placement;
using Orleans.Runtime;
using Orleans.Runtime.Placement;

namespace Funnel.Cluster.Placement;

/// <summary>
/// Places a grain on the node its key names after the last '@' (<c>collection/shard@node</c>): a replica lives where its data
/// folder is. With the node down there is nowhere to place it, and calls fail at once with a <see cref="ClusterException"/>
/// naming the node, which a shard counts as a replica that is down.
/// </summary>
[GenerateSerializer, Immutable, SuppressReferenceTracking, Alias("funnel.node-placement")]
public sealed class NodePlacement : PlacementStrategy
{
    internal static readonly NodePlacement Instance = new();

    /// <summary>The node a grain key names.</summary>
    public static string NodeOf(string key) => key[(key.LastIndexOf('@') + 1)..];
}

[AttributeUsage(AttributeTargets.Class, AllowMultiple = false)]
public sealed class NodePlacementAttribute() : PlacementAttribute(NodePlacement.Instance);

internal sealed class NodePlacementDirector(IClusterMembershipService membership) : IPlacementDirector
{
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        string node = NodePlacement.NodeOf(target.GrainIdentity.Key.ToString()!);
        var compatible = context.GetCompatibleSilos(target).ToHashSet();
        // A restarted node may briefly appear twice (its old incarnation not yet declared dead): take the newest.
        SiloAddress? silo = membership.CurrentSnapshot.Members.Values
            .Where(m => m.Status == SiloStatus.Active && m.Name == node && compatible.Contains(m.SiloAddress))
            .Select(m => m.SiloAddress)
            .OrderByDescending(a => a.Generation)
            .FirstOrDefault();
        return silo is not null ? Task.FromResult(silo)
            : throw new ClusterException(ClusterProblem.Unavailable, $"node '{node}' is not up");
    }
}
