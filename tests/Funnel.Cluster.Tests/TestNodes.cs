using Funnel.Cluster;
using Funnel.Cluster.Coordination;
using Funnel.Inference;
using Funnel.Retrieval;
using Funnel.Tests.Retrieval;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Orleans.Hosting;
using Orleans.TestingHost;

[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace Funnel.Cluster.Tests;

/// <summary>
/// An in-process Orleans cluster of Funnel nodes (TestingHost silos "Primary", "Secondary_1", ...), each with its own data
/// folder under a temp root, failure detection tuned to seconds, and a coordinator on the test's cluster client.
/// Per-silo overrides of the version or bi-encoder come from configuration keys <c>Funnel:VersionOf:NAME</c> and
/// <c>Funnel:BiEncoderOf:NAME</c> (for the join checks).
/// </summary>
public sealed class TestNodes : IAsyncDisposable
{
    public TestCluster Cluster { get; }
    public string DataRoot { get; }
    public ClusterCollections Coordinator { get; }

    private TestNodes(TestCluster cluster, string root, ClusterCollections coordinator)
    {
        Cluster = cluster;
        DataRoot = root;
        Coordinator = coordinator;
    }

    public static async Task<TestNodes> StartAsync(SentenceEncoder biEncoder, int silos = 3, IReadOnlyDictionary<string, string>? overrides = null)
    {
        string root = Directory.CreateTempSubdirectory("funnel-cluster-").FullName;
        var builder = new TestClusterBuilder((short)silos);
        builder.Properties["Funnel:DataRoot"] = root;
        builder.Properties["Funnel:BiEncoder"] = FunnelNodeOptions.FingerprintJson(biEncoder.Fingerprint);
        foreach (var (key, value) in overrides ?? new Dictionary<string, string>()) builder.Properties[key] = value;
        builder.AddSiloBuilderConfigurator<NodeConfigurator>();
        builder.AddClientBuilderConfigurator<ClientConfigurator>();
        TestCluster cluster = builder.Build();
        await cluster.DeployAsync();
        return new TestNodes(cluster, root, new ClusterCollections(cluster.Client, biEncoder) { ReadTimeout = TimeSpan.FromSeconds(10) });
    }

    private readonly List<SiloHandle> _restarted = [];

    public SiloHandle Silo(string name) => Cluster.Silos.Concat(_restarted).Single(s => s.Name == name && s.IsActive);

    /// <summary>Kills a node as a crash would (no shutdown), keeping its data folder.</summary>
    public async Task<SiloHandle> KillAsync(string name)
    {
        SiloHandle silo = Silo(name);
        await Cluster.KillSiloAsync(silo);
        _restarted.Remove(silo);
        return silo;
    }

    /// <summary>Starts a killed node again: the same name, port and data folder (TestCluster only restarts nodes it stopped).</summary>
    public async Task RestartAsync(SiloHandle killed)
    {
        SiloHandle silo = await Cluster.StartSiloAsync(killed.InstanceNumber, Cluster.Options);
        _restarted.Add(silo);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            foreach (SiloHandle silo in _restarted.Where(s => s.IsActive)) await silo.StopSiloAsync(stopGracefully: false);
            await Cluster.StopAllSilosAsync();
        }
        finally
        {
            await Cluster.DisposeAsync();
            Directory.Delete(DataRoot, recursive: true);
        }
    }

    private sealed class NodeConfigurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder silo)
        {
            IConfiguration config = silo.Configuration;
            silo.AddFunnelNode(_ => { });
            silo.Services.AddOptions<FunnelNodeOptions>().Configure<IOptions<SiloOptions>>((node, siloOptions) =>
            {
                string name = siloOptions.Value.SiloName;
                node.DataDirectory = Path.Combine(config["Funnel:DataRoot"]!, name);
                node.BiEncoder = FunnelNodeOptions.ParseFingerprint(config[$"Funnel:BiEncoderOf:{name}"] ?? config["Funnel:BiEncoder"]!);
                node.FunnelVersion = config[$"Funnel:VersionOf:{name}"] ?? FunnelNodeOptions.CurrentVersion;
                node.ReplicaTimeout = TimeSpan.FromSeconds(10);
            });
            silo.Configure<ClusterMembershipOptions>(o =>
            {
                o.ProbeTimeout = TimeSpan.FromSeconds(1);
                o.NumMissedProbesLimit = 2;
                o.NumVotesForDeathDeclaration = 1;
                o.TableRefreshTimeout = TimeSpan.FromSeconds(1);
                o.IAmAliveTablePublishTimeout = TimeSpan.FromSeconds(1);
            });
            silo.Configure<SiloMessagingOptions>(o => o.ResponseTimeout = TimeSpan.FromSeconds(20));
        }
    }

    private sealed class ClientConfigurator : IClientBuilderConfigurator
    {
        public void Configure(IConfiguration configuration, IClientBuilder client) =>
            client.Configure<ClientMessagingOptions>(o => o.ResponseTimeout = TimeSpan.FromSeconds(20));
    }
}

/// <summary>The small seeded models and documents, shared by a test class.</summary>
public sealed class ClusterModels : IDisposable
{
    public SmallModels Models { get; } = new();

    public void Dispose() => Models.Dispose();
}
