namespace Funnel.Index;

/// <summary>
/// A mutable, persistent, thread-safe vector index keyed by caller ids. Searches may run concurrently with
/// upserts and removes; <see cref="Save"/> waits for in-flight writes. Scores are higher-is-better.
/// </summary>
public interface IVectorIndex : IDisposable
{
    /// <summary>Length of every vector.</summary>
    int Dimension { get; }

    /// <summary>How vectors are compared.</summary>
    DistanceMetric Metric { get; }

    /// <summary>Number of live (not removed) vectors.</summary>
    int Count { get; }

    /// <summary>Inserts the vector, or replaces the vector and metadata of an existing id.</summary>
    void Upsert(long id, ReadOnlySpan<float> vector, IReadOnlyDictionary<string, string>? metadata = null);

    /// <summary>Upserts many records using up to <paramref name="maxThreads"/> threads (0 = all cores);
    /// reports the number of records done.</summary>
    void AddBatch(IReadOnlyList<VectorRecord> records, int maxThreads = 0, IProgress<int>? progress = null, CancellationToken ct = default);

    /// <summary>Removes the id; false when it was not present.</summary>
    bool Remove(long id);

    /// <summary>True when the id is present.</summary>
    bool Contains(long id);

    /// <summary>A copy of the stored vector (normalised for <see cref="DistanceMetric.Cosine"/>), or null when absent.</summary>
    float[]? GetVector(long id);

    /// <summary>The id's metadata, or null when absent or none was given.</summary>
    IReadOnlyDictionary<string, string>? GetMetadata(long id);

    /// <summary>A snapshot of the live ids.</summary>
    IReadOnlyList<long> GetIds();

    /// <summary>The <paramref name="k"/> best vectors for the query, best first, optionally restricted by a filter.
    /// <paramref name="efSearch"/> overrides a graph index's candidate list size for this search (0: the index's
    /// default; raised to k); exact indexes ignore it.</summary>
    IReadOnlyList<VectorHit> Search(ReadOnlySpan<float> query, int k, VectorFilter? filter = null, int efSearch = 0);

    /// <summary><see cref="Search"/> for many queries in parallel on up to <paramref name="maxThreads"/> threads (0 = all cores).</summary>
    IReadOnlyList<VectorHit>[] SearchBatch(IReadOnlyList<float[]> queries, int k, VectorFilter? filter = null, int maxThreads = 0, CancellationToken ct = default);

    /// <summary>Where the memory goes.</summary>
    IndexMemoryReport Memory { get; }

    /// <summary>Writes the index to one file atomically (temp file in the same folder, fsync, rename).</summary>
    void Save(string path);
}
