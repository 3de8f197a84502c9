using System.Reflection;
using System.Text.Json;
using Funnel.Inference;
using Funnel.Retrieval;

namespace Funnel.Cluster;

/// <summary>
/// One Funnel node of a cluster (one Orleans silo): its replicas live under <see cref="DataDirectory"/>; the node's name is
/// its silo's name, which must stay the same across restarts (replicas are placed on names, see <see cref="ClusterLayout"/>).
/// </summary>
public sealed record FunnelNodeOptions
{
    /// <summary>Folder holding one sub-folder per collection, with this node's replicas of its shards.</summary>
    public string DataDirectory { get; set; } = "";

    /// <summary>The bi-encoder this node embeds with (null: none); every node of a cluster must have the same.</summary>
    public ModelFingerprint? BiEncoder { get; set; }

    /// <summary>Funnel's version; every node of a cluster must run the same (they share grain interfaces and formats).</summary>
    public string FunnelVersion { get; set; } = CurrentVersion;

    /// <summary>How long a replica may take to answer a write or a search before the shard counts it as down.</summary>
    public TimeSpan ReplicaTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>This build's version: its informational version without the source revision.</summary>
    public static string CurrentVersion { get; } =
        typeof(Collection).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0";

    internal NodeInfo Describe(string name) => new(name, FunnelVersion, BiEncoder is null ? null : FingerprintJson(BiEncoder));

    /// <summary>A bi-encoder's fingerprint as nodes exchange it (and a collection manifest records it).</summary>
    public static string FingerprintJson(ModelFingerprint fingerprint) => JsonSerializer.Serialize(fingerprint, CollectionManifest.Json);

    public static ModelFingerprint ParseFingerprint(string json) =>
        JsonSerializer.Deserialize<ModelFingerprint>(json, CollectionManifest.Json) ?? throw new InvalidDataException("an empty bi-encoder fingerprint");
}
