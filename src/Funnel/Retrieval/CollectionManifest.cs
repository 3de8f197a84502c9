using System.Text.Json;
using System.Text.Json.Serialization;
using Funnel.Index;
using Funnel.Inference;
using Funnel.Retrieval.Lexical;
using Funnel.IO;

namespace Funnel.Retrieval;

/// <summary>
/// <c>manifest.json</c> of a collection folder: what produced its vectors, how it chunks and indexes, and which checkpoint
/// generation (snapshot folder + write-ahead log) is current. Rewritten atomically; the rename is a checkpoint's commit point.
/// </summary>
public sealed record CollectionManifest
{
    public const string FileName = "manifest.json";
    public const string FormatName = "funnel-collection";
    public const int CurrentFormatVersion = 1;

    public string Format { get; init; } = FormatName;
    public int FormatVersion { get; init; } = CurrentFormatVersion;

    /// <summary>The current checkpoint: snapshot folder <c>gen-{Generation:D6}</c> and log <c>wal-{Generation:D6}.log</c>.</summary>
    public long Generation { get; init; }

    /// <summary>The last write-ahead-log sequence number the snapshot includes.</summary>
    public long WalSequence { get; init; }

    /// <summary>The model the vectors come from; vectors of another model are not comparable with them.</summary>
    public required ModelFingerprint BiEncoder { get; init; }
    public required ChunkingOptions Chunking { get; init; }
    public required VectorIndexSettings VectorIndex { get; init; }
    public required Bm25Options Bm25 { get; init; }

    /// <summary>Counts as of the snapshot (the log may add to them).</summary>
    public CollectionCounts Counts { get; init; } = new(0, 0);

    public DateTimeOffset Created { get; init; }
    public DateTimeOffset Updated { get; init; }

    internal static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
    };

    public static CollectionManifest Read(string folder)
    {
        string path = Path.Combine(folder, FileName);
        if (File.Exists(folder)) throw new CollectionFolderException($"'{folder}' is a file, not a collection folder");
        if (!File.Exists(path))
            throw new FileNotFoundException(Directory.Exists(folder)
                ? $"'{folder}' is not a Funnel collection (no {FileName}); create one with `funnel index`"
                : $"collection folder '{folder}' does not exist; create it with `funnel index`", path);
        CollectionManifest? manifest;
        try
        {
            manifest = JsonSerializer.Deserialize<CollectionManifest>(File.ReadAllBytes(path), Json);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"'{path}' is not a valid collection manifest: {e.Message}", e);
        }
        if (manifest is null || manifest.Format != FormatName)
            throw new InvalidDataException($"'{path}' is not a Funnel collection manifest (format \"{manifest?.Format}\", expected \"{FormatName}\")");
        if (manifest.FormatVersion != CurrentFormatVersion)
            throw new InvalidDataException($"'{path}': collection format version {manifest.FormatVersion} is not supported by this build (expected {CurrentFormatVersion})");
        return manifest;
    }

    internal void Write(string folder) =>
        DurableFile.WriteAtomic(Path.Combine(folder, FileName), stream => JsonSerializer.Serialize(stream, this, Json));
}

public enum VectorIndexKind { Hnsw, Flat }

/// <summary>The vector index of a collection: one vector per chunk, compared by <see cref="Metric"/>.</summary>
public sealed record VectorIndexSettings
{
    public VectorIndexKind Kind { get; init; } = VectorIndexKind.Hnsw;
    public DistanceMetric Metric { get; init; } = DistanceMetric.Cosine;

    /// <summary>Graph parameters when <see cref="Kind"/> is <see cref="VectorIndexKind.Hnsw"/>.</summary>
    public HnswOptions Hnsw { get; init; } = new();

    /// <summary>A new, empty index of vectors of <paramref name="dimension"/> as these settings say: the collection's one factory.</summary>
    internal IVectorIndex Create(int dimension) => Kind switch
    {
        VectorIndexKind.Flat => new FlatIndex(dimension, Metric),
        _ => new HnswIndex(dimension, Metric, Hnsw),
    };

    /// <summary>
    /// Opens a saved index of these settings' kind (a file of another kind is refused as corrupt). <paramref name="mapped"/>
    /// memory-maps it (copy-on-write: replaying a log into it still works) so that opening is cheap; otherwise it is loaded
    /// into memory, as a writer needs: it deletes superseded generations, which some systems refuse for mapped files.
    /// </summary>
    internal IVectorIndex Open(string path, bool mapped) => (Kind, mapped) switch
    {
        (VectorIndexKind.Flat, true) => FlatIndex.Open(path),
        (VectorIndexKind.Flat, false) => FlatIndex.Load(path),
        (_, true) => HnswIndex.Open(path),
        _ => HnswIndex.Load(path),
    };
}

public sealed record CollectionCounts(int Documents, int Chunks);
