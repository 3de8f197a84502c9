using System.IO.Hashing;
using System.Text;
using System.Text.Json;
using Funnel.Inference;
using Funnel.IO;
using Funnel.Retrieval;

namespace Funnel.Cluster;

/// <summary>
/// A sharded collection: S shards × R replicas, the node each replica lives on (<see cref="Nodes"/>[shard][replica], all
/// different within a shard), the write quorum W, and the settings every replica's local collection is created with.
/// Fixed at creation, as Qdrant's shard placement is: a node that goes down keeps its replicas and catches up when it returns.
/// Kept as <c>layout.json</c> on every node (format and version checked on read).
/// </summary>
[GenerateSerializer, Immutable, Alias("funnel.cluster-layout")]
public sealed record ClusterLayout
{
    public const string FileName = "layout.json";
    public const string FormatName = "funnel-cluster-layout";
    public const int CurrentFormatVersion = 1;

    [Id(0)] public string Format { get; init; } = FormatName;
    [Id(1)] public int FormatVersion { get; init; } = CurrentFormatVersion;
    [Id(2)] public required string Name { get; init; }
    [Id(3)] public required int Shards { get; init; }
    [Id(4)] public required int Replicas { get; init; }
    [Id(5)] public required int WriteQuorum { get; init; }
    [Id(6)] public required string[][] Nodes { get; init; }

    /// <summary>The bi-encoder and the chunking and index settings of every replica (a <see cref="CollectionManifest"/>'s, as JSON).</summary>
    [Id(7)] public required string Settings { get; init; }
    [Id(8)] public DateTimeOffset Created { get; init; }

    /// <summary>The default write quorum: a majority of the replicas, so that any two quorums share a replica.</summary>
    public static int Majority(int replicas) => replicas / 2 + 1;

    /// <summary>The shard a document belongs to: a stable hash of its id (XxHash64 of its UTF-8 bytes; never string.GetHashCode,
    /// which differs between processes).</summary>
    public static int ShardOf(string documentId, int shards) =>
        (int)(XxHash64.HashToUInt64(Encoding.UTF8.GetBytes(documentId)) % (ulong)shards);

    public int ShardOf(string documentId) => ShardOf(documentId, Shards);

    /// <summary>The name shards are known by in errors and admin requests: <c>collection/shard</c>.</summary>
    public string ShardName(int shard) => $"{Name}/{shard}";

    public CollectionManifest SettingsManifest() =>
        JsonSerializer.Deserialize<CollectionManifest>(Settings, CollectionManifest.Json) ?? throw new InvalidDataException($"collection '{Name}': empty settings");

    public ModelFingerprint BiEncoder => SettingsManifest().BiEncoder;

    public CollectionOptions CollectionOptions()
    {
        CollectionManifest m = SettingsManifest();
        return new CollectionOptions { Chunking = m.Chunking, VectorIndex = m.VectorIndex, Bm25 = m.Bm25 };
    }

    public static string SettingsOf(ModelFingerprint biEncoder, CollectionOptions options) =>
        JsonSerializer.Serialize(new CollectionManifest
        {
            BiEncoder = biEncoder, Chunking = options.Chunking ?? throw new ArgumentException("chunking is required", nameof(options)),
            VectorIndex = options.VectorIndex, Bm25 = options.Bm25,
        }, CollectionManifest.Json);

    /// <summary>
    /// Places S × R replicas on <paramref name="nodes"/> (sorted by name, so every coordinator computes the same): replica r
    /// of shard s on node (s + r) mod n, which puts a shard's replicas on R different nodes and spreads shards evenly.
    /// </summary>
    public static string[][] Place(int shards, int replicas, IReadOnlyCollection<string> nodes)
    {
        string[] sorted = [.. nodes.Order(StringComparer.Ordinal)];
        if (replicas > sorted.Length)
            throw new ClusterException(ClusterProblem.Invalid,
                $"{replicas} replicas per shard need {replicas} nodes, each holding one; {sorted.Length} {(sorted.Length == 1 ? "is" : "are")} up ({string.Join(", ", sorted)})", "replicas");
        return [.. Enumerable.Range(0, shards).Select(s => Enumerable.Range(0, replicas).Select(r => sorted[(s + r) % sorted.Length]).ToArray())];
    }

    internal void Write(string folder)
    {
        Directory.CreateDirectory(folder);
        DurableFile.WriteAtomic(Path.Combine(folder, FileName), stream => JsonSerializer.Serialize(stream, this, CollectionManifest.Json));
    }

    internal static ClusterLayout? TryRead(string folder)
    {
        string path = Path.Combine(folder, FileName);
        if (!File.Exists(path)) return null;
        ClusterLayout? layout;
        try
        {
            layout = JsonSerializer.Deserialize<ClusterLayout>(File.ReadAllBytes(path), CollectionManifest.Json);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"'{path}' is not a valid cluster layout: {e.Message}", e);
        }
        if (layout is null || layout.Format != FormatName)
            throw new InvalidDataException($"'{path}' is not a Funnel cluster layout (format \"{layout?.Format}\", expected \"{FormatName}\")");
        if (layout.FormatVersion != CurrentFormatVersion)
            throw new InvalidDataException($"'{path}': cluster layout version {layout.FormatVersion} is not supported by this build (expected {CurrentFormatVersion})");
        return layout;
    }
}
