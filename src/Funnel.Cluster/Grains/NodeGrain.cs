using Funnel.Cluster.Placement;
using Microsoft.Extensions.Options;

namespace Funnel.Cluster.Grains;

/// <summary>A node's own grain: its version and bi-encoder, and the layouts in its data folder (<c>{data}/{collection}/layout.json</c>).</summary>
[NodePlacement]
internal sealed class NodeGrain(IOptions<FunnelNodeOptions> options) : Grain, INodeGrain
{
    private string Root => options.Value.DataDirectory;

    public Task<NodeInfo> DescribeAsync() => Task.FromResult(options.Value.Describe(this.GetPrimaryKeyString()));

    public Task<ClusterLayout[]> LayoutsAsync() => Task.FromResult(
        Directory.Exists(Root)
            ? Directory.EnumerateDirectories(Root).Select(ClusterLayout.TryRead).OfType<ClusterLayout>().OrderBy(l => l.Name, StringComparer.Ordinal).ToArray()
            : []);

    public Task SaveLayoutAsync(ClusterLayout layout)
    {
        layout.Write(Path.Combine(Root, layout.Name));
        return Task.CompletedTask;
    }

    public Task ForgetAsync(string collection)
    {
        string folder = Path.Combine(Root, collection);
        if (!Directory.Exists(folder)) return Task.CompletedTask;
        // Renamed first, so that a crash mid-delete leaves no layout behind to bring the collection back.
        string doomed = Path.Combine(Root, $".deleted-{collection}-{Guid.NewGuid():N}");
        Directory.Move(folder, doomed);
        Directory.Delete(doomed, recursive: true);
        return Task.CompletedTask;
    }
}

/// <summary>Creation and deletion of one collection. Creation writes the layout on every node that is up, then opens every replica.</summary>
internal sealed class CollectionGrain : Grain, ICollectionGrain
{
    public async Task<ClusterLayout> CreateAsync(int shards, int replicas, int writeQuorum, string settings)
    {
        string name = this.GetPrimaryKeyString();
        string[] nodes = await ClusterNodes.ActiveAsync(GrainFactory);
        ClusterLayout[][] known = await Task.WhenAll(nodes.Select(n => GrainFactory.GetGrain<INodeGrain>(n).LayoutsAsync()));
        if (known.SelectMany(l => l).Any(l => l.Name == name))
            throw new ClusterException(ClusterProblem.Conflict, $"a collection named '{name}' already exists", "name");
        var layout = new ClusterLayout
        {
            Name = name, Shards = shards, Replicas = replicas, WriteQuorum = writeQuorum,
            Nodes = ClusterLayout.Place(shards, replicas, nodes), Settings = settings, Created = DateTimeOffset.UtcNow,
        };
        await Task.WhenAll(nodes.Select(n => GrainFactory.GetGrain<INodeGrain>(n).SaveLayoutAsync(layout)));
        // Opening each replica creates its empty local collection now, so that a bad setting fails the create, not a later write.
        await Task.WhenAll(Enumerable.Range(0, shards).SelectMany(s => layout.Nodes[s].Select(n =>
            GrainFactory.GetGrain<IShardReplicaGrain>(ShardMembers.Of(layout, s).ReplicaKey(n)).PositionAsync())));
        return layout;
    }

    public async Task DeleteAsync()
    {
        string name = this.GetPrimaryKeyString();
        string[] nodes = await ClusterNodes.ActiveAsync(GrainFactory);
        ClusterLayout layout = (await Task.WhenAll(nodes.Select(n => GrainFactory.GetGrain<INodeGrain>(n).LayoutsAsync())))
            .SelectMany(l => l).FirstOrDefault(l => l.Name == name)
            ?? throw new ClusterException(ClusterProblem.NotFound, $"there is no collection '{name}' (GET /collections lists them)");
        string[] down = [.. layout.Nodes.SelectMany(n => n).Distinct().Except(nodes)];
        if (down.Length > 0)
            throw new ClusterException(ClusterProblem.Unavailable,
                $"collection '{name}' has replicas on nodes that are down ({string.Join(", ", down)}); delete it when they are back, or they would bring it back");
        await Task.WhenAll(Enumerable.Range(0, layout.Shards).SelectMany(s => layout.Nodes[s].Select(n =>
            GrainFactory.GetGrain<IShardReplicaGrain>(ShardMembers.Of(layout, s).ReplicaKey(n)).DropAsync())));
        await Task.WhenAll(nodes.Select(n => GrainFactory.GetGrain<INodeGrain>(n).ForgetAsync(name)));
    }
}

/// <summary>The names of the nodes that are up, from Orleans' membership (on a silo or a client alike).</summary>
public static class ClusterNodes
{
    public static async Task<string[]> ActiveAsync(IGrainFactory grains)
    {
        var hosts = await grains.GetGrain<Orleans.Runtime.IManagementGrain>(0).GetDetailedHosts(onlyActive: true);
        return [.. hosts.Select(h => h.SiloName).Distinct().Order(StringComparer.Ordinal)];
    }
}
