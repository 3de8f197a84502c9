using System.Data.Common;
using System.Net;
using Funnel.Inference;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;
using Orleans.Configuration;
using Orleans.Hosting;

namespace Funnel.Cluster;

/// <summary>
/// How <c>funnel serve --cluster</c> joins a cluster: this node's name and data folder, its Orleans ports, and where
/// membership lives: Redis (Orleans' Redis clustering), a PostgreSQL database (Orleans' ADO.NET clustering, whose tables
/// must exist: see docs/cluster.md), or, for trying it out on one machine, the endpoint of a primary node
/// (Orleans' development clustering, no failover of that node).
/// </summary>
public sealed record FunnelClusterOptions
{
    public required string NodeName { get; init; }
    public required string DataDirectory { get; init; }

    /// <summary><c>redis:HOST:PORT</c> (a StackExchange.Redis configuration), <c>postgres:CONNECTION-STRING</c>, or
    /// <c>primary:HOST:PORT</c> (the silo port of the node that keeps membership; itself included).</summary>
    public required string Membership { get; init; }

    public int SiloPort { get; init; } = 11111;
    public int GatewayPort { get; init; } = 30000;

    /// <summary>The address other nodes reach this one at.</summary>
    public IPAddress AdvertisedAddress { get; init; } = IPAddress.Loopback;

    /// <summary>Nodes with the same cluster id form one cluster (several clusters may share a database).</summary>
    public string ClusterId { get; init; } = "funnel";

    public const string RedisPrefix = "redis:";
    public const string PostgresPrefix = "postgres:";
    public const string PrimaryPrefix = "primary:";

    /// <summary>The problem with these options, naming the option at fault, or null.</summary>
    public string? Problem()
    {
        if (NodeName.Length == 0 || NodeName.Contains('@') || NodeName.Contains('/'))
            return $"--node-name \"{NodeName}\" must be non-empty, without '@' or '/'";
        if (SiloPort is < 1 or > 65535 || GatewayPort is < 1 or > 65535 || SiloPort == GatewayPort)
            return $"--silo-port ({SiloPort}) and --gateway-port ({GatewayPort}) must be different ports between 1 and 65535";
        if (Membership.StartsWith(RedisPrefix, StringComparison.Ordinal))
        {
            try
            {
                _ = StackExchange.Redis.ConfigurationOptions.Parse(Membership[RedisPrefix.Length..]);
                return Membership.Length > RedisPrefix.Length ? null : "--cluster redis: needs HOST:PORT, e.g. redis:127.0.0.1:6379";
            }
            catch (ArgumentException e)
            {
                return $"--cluster: the Redis configuration is invalid: {e.Message}";
            }
        }
        if (Membership.StartsWith(PostgresPrefix, StringComparison.Ordinal))
        {
            try
            {
                _ = new NpgsqlConnectionStringBuilder(Membership[PostgresPrefix.Length..]);
                return null;
            }
            catch (ArgumentException e)
            {
                return $"--cluster: the PostgreSQL connection string is invalid: {e.Message}";
            }
        }
        if (Membership.StartsWith(PrimaryPrefix, StringComparison.Ordinal))
            return IPEndPoint.TryParse(Membership[PrimaryPrefix.Length..], out var endpoint) && endpoint.Port > 0 ? null
                : $"--cluster primary:{Membership[PrimaryPrefix.Length..]}: expected primary:HOST:PORT, e.g. primary:127.0.0.1:11111";
        return $"--cluster \"{Membership}\": expected redis:HOST:PORT, postgres:CONNECTION-STRING (e.g. postgres:Host=127.0.0.1;Port=5432;Database=funnel;Username=funnel) or primary:HOST:PORT";
    }
}

public static class FunnelClusterHosting
{
    /// <summary>Co-hosts an Orleans silo that is a Funnel node in <paramref name="builder"/>'s host.</summary>
    public static IHostApplicationBuilder UseFunnelCluster(this IHostApplicationBuilder builder, FunnelClusterOptions cluster, ModelFingerprint? biEncoder)
    {
        if (cluster.Problem() is { } problem) throw new ArgumentException(problem, nameof(cluster));
        builder.UseOrleans(silo =>
        {
            silo.Configure<ClusterOptions>(o =>
            {
                o.ClusterId = cluster.ClusterId;
                o.ServiceId = "funnel";
            });
            silo.Configure<SiloOptions>(o => o.SiloName = cluster.NodeName);
            silo.ConfigureEndpoints(cluster.AdvertisedAddress, cluster.SiloPort, cluster.GatewayPort, listenOnAnyHostAddress: false);
            if (cluster.Membership.StartsWith(FunnelClusterOptions.RedisPrefix, StringComparison.Ordinal))
                silo.UseRedisClustering(cluster.Membership[FunnelClusterOptions.RedisPrefix.Length..]);
            else if (cluster.Membership.StartsWith(FunnelClusterOptions.PostgresPrefix, StringComparison.Ordinal))
            {
                // Orleans finds the ADO.NET provider by its invariant name.
                DbProviderFactories.RegisterFactory("Npgsql", NpgsqlFactory.Instance);
                silo.UseAdoNetClustering(o =>
                {
                    o.Invariant = "Npgsql";
                    o.ConnectionString = cluster.Membership[FunnelClusterOptions.PostgresPrefix.Length..];
                });
            }
            else silo.UseDevelopmentClustering(IPEndPoint.Parse(cluster.Membership[FunnelClusterOptions.PrimaryPrefix.Length..]));
            // A crashed node is declared dead within seconds, so that its shards' reads and writes move on.
            silo.Configure<ClusterMembershipOptions>(o =>
            {
                o.ProbeTimeout = TimeSpan.FromSeconds(2);
                o.NumMissedProbesLimit = 2;
                o.NumVotesForDeathDeclaration = 1;
            });
            silo.Configure<SiloMessagingOptions>(o => o.ResponseTimeout = TimeSpan.FromSeconds(15));
            silo.AddFunnelNode(node =>
            {
                node.DataDirectory = cluster.DataDirectory;
                node.BiEncoder = biEncoder;
            });
        });
        return builder;
    }
}
