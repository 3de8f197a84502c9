namespace Funnel.Index;

/// <summary>
/// What a collection needs of a vector index: a mutable, persistent, thread-safe index keyed by caller ids. Searches may run
/// concurrently with upserts and removes; <see cref="Save"/> waits for in-flight writes. Scores are higher-is-better.
/// Opening a saved file is the concrete types' (<see cref="VectorIndex.Open"/>, <see cref="HnswIndex.Open"/>,
/// <see cref="FlatIndex.Open"/>), which also offer single upserts, metadata lookups, batch search and memory reports.
/// </summary>
public interface IVectorIndex : IDisposable
{
    /// <summary>Length of every vector.</summary>
    int Dimension { get; }

    /// <summary>Number of live (not removed) vectors.</summary>
    int Count { get; }

    /// <summary>Inserts the records, replacing the vector (and metadata) of ids already present, using up to
    /// <paramref name="maxThreads"/> threads (0 = all cores); reports the number of records done.</summary>
    void AddBatch(IReadOnlyList<VectorRecord> records, int maxThreads = 0, IProgress<int>? progress = null, CancellationToken ct = default);

    /// <summary>The stored vector of the id (normalized for cosine, as searched), or null when absent: what a shard replica
    /// copies to a peer that must catch up.</summary>
    float[]? GetVector(long id);

    /// <summary>Removes the id; false when it was not present.</summary>
    bool Remove(long id);

    /// <summary>The <paramref name="k"/> best vectors for the query, best first, optionally restricted by a filter (of ids,
    /// or of the metadata stored with them). <paramref name="efSearch"/> overrides a graph index's candidate list size for
    /// this search (0: the index's default; raised to k); exact indexes ignore it.</summary>
    IReadOnlyList<VectorHit> Search(ReadOnlySpan<float> query, int k, VectorFilter? filter = null, int efSearch = 0);

    /// <summary>Writes the index to one file atomically (temp file in the same folder, fsync, rename).</summary>
    void Save(string path);
}
