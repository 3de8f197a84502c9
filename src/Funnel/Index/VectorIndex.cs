using System.Buffers.Binary;

namespace Funnel.Index;

/// <summary>
/// What <see cref="FlatIndex"/> and <see cref="HnswIndex"/> share: id bookkeeping, argument checks, batch
/// operations, and the save gate. Writers (upsert/remove) hold the gate shared and an id stripe lock;
/// <see cref="Save"/> holds the gate exclusively so the file is a consistent snapshot. Searches take no lock.
/// </summary>
public abstract class VectorIndex : IVectorIndex
{
    private readonly ReaderWriterLockSlim _saveGate = new(LockRecursionPolicy.NoRecursion);
    private protected readonly ScratchPool Pool = new();
    private bool _disposed;

    private protected VectorIndex(VectorStorage storage) => Storage = storage;

    private protected VectorStorage Storage { get; }

    /// <summary>Opens an index file of either kind (memory-mapped, see <see cref="HnswIndex.Open"/>).</summary>
    public static VectorIndex Open(string path) => PeekKind(path) == IndexFile.Kind.Flat ? FlatIndex.Open(path) : HnswIndex.Open(path);

    /// <summary>Loads an index file of either kind fully into memory.</summary>
    public static VectorIndex Load(string path) => PeekKind(path) == IndexFile.Kind.Flat ? FlatIndex.Load(path) : HnswIndex.Load(path);

    private static IndexFile.Kind PeekKind(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: index file not found", path);
        Span<byte> head = stackalloc byte[24];
        using (var fs = File.OpenRead(path))
            if (fs.ReadAtLeast(head, head.Length, throwOnEndOfStream: false) < head.Length) throw IndexFile.Corrupt(path, "shorter than its header");
        // Unknown kinds are reported by the HNSW reader's header check.
        return (IndexFile.Kind)BinaryPrimitives.ReadInt32LittleEndian(head[20..]) == IndexFile.Kind.Flat ? IndexFile.Kind.Flat : IndexFile.Kind.Hnsw;
    }

    /// <inheritdoc/>
    public int Dimension => Storage.Dimension;

    /// <summary>How vectors are compared.</summary>
    public DistanceMetric Metric => Storage.Metric;

    /// <summary>Vector storage of this index.</summary>
    public VectorQuantization Quantization => Storage.Quantization;

    /// <inheritdoc/>
    public int Count => Storage.LiveCount;

    /// <summary>True when the id is present.</summary>
    public bool Contains(long id) => Storage.TryGetSlot(id, out _);

    /// <summary>A copy of the stored vector (normalised for <see cref="DistanceMetric.Cosine"/>), or null when absent.</summary>
    public float[]? GetVector(long id) => Storage.ReadVector(id);

    /// <summary>The id's metadata, or null when absent or none was given.</summary>
    public IReadOnlyDictionary<string, string>? GetMetadata(long id) => Storage.TryGetSlot(id, out int slot) ? Storage.MetadataOf(slot) : null;

    /// <summary>A snapshot of the live ids.</summary>
    public IReadOnlyList<long> GetIds() => Storage.Ids();

    /// <summary>Where the memory goes.</summary>
    public abstract IndexMemoryReport Memory { get; }

    /// <summary>Inserts the vector, or replaces the vector and metadata of an existing id.</summary>
    public void Upsert(long id, ReadOnlySpan<float> vector, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var prepared = new float[Dimension];
        Storage.Prepare(vector, prepared, nameof(vector));
        var copy = metadata is null ? null : new Dictionary<string, string>(metadata, StringComparer.Ordinal);
        _saveGate.EnterReadLock();
        try
        {
            lock (Storage.IdLock(id)) UpsertPrepared(id, prepared, copy);
        }
        finally { _saveGate.ExitReadLock(); }
    }

    /// <summary>Stores an already checked and prepared vector; the caller holds the id's lock.</summary>
    private protected abstract void UpsertPrepared(long id, float[] prepared, IReadOnlyDictionary<string, string>? metadata);

    /// <inheritdoc/>
    public void AddBatch(IReadOnlyList<VectorRecord> records, int maxThreads = 0, IProgress<int>? progress = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(records);
        for (int i = 0; i < records.Count; i++)
            if (records[i].Vector is not { } v || v.Length != Dimension)
                throw new ArgumentException($"records[{i}] (id {records[i].Id}) has {records[i].Vector?.Length ?? 0} dimensions; the index expects {Dimension}", nameof(records));
        int done = 0;
        var options = new ParallelOptions { MaxDegreeOfParallelism = Threads(maxThreads), CancellationToken = ct };
        Parallel.For(0, records.Count, options, i =>
        {
            var r = records[i];
            Upsert(r.Id, r.Vector, r.Metadata);
            int n = Interlocked.Increment(ref done);
            if (progress is not null && (n % 1024 == 0 || n == records.Count)) progress.Report(n);
        });
    }

    /// <inheritdoc/>
    public bool Remove(long id)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _saveGate.EnterReadLock();
        try
        {
            lock (Storage.IdLock(id)) return Storage.Remove(id, out _);
        }
        finally { _saveGate.ExitReadLock(); }
    }

    /// <inheritdoc/>
    public IReadOnlyList<VectorHit> Search(ReadOnlySpan<float> query, int k, VectorFilter? filter = null, int efSearch = 0) =>
        Search(query, k, filter, parallel: true, efSearch);

    private IReadOnlyList<VectorHit> Search(ReadOnlySpan<float> query, int k, VectorFilter? filter, bool parallel, int efSearch)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (k < 1) throw new ArgumentOutOfRangeException(nameof(k), k, "k must be at least 1");
        if (efSearch < 0) throw new ArgumentOutOfRangeException(nameof(efSearch), efSearch, "efSearch must be 0 (the index's default) or more");
        using var lease = Pool.Rent();
        var scratch = lease.Scratch;
        scratch.Prepare(Dimension, Storage.SlotCount, k);
        Storage.Prepare(query, scratch.Query, nameof(query));
        if (Storage.LiveCount == 0) return [];
        return SearchPrepared(scratch, Storage.Bind(scratch), k, filter, parallel, efSearch);
    }

    /// <summary>Searches with the query bound from <c>scratch.Query</c>; <paramref name="efSearch"/> 0 means the default.</summary>
    private protected abstract List<VectorHit> SearchPrepared(SearchScratch scratch, in QueryRef q, int k, VectorFilter? filter, bool parallel, int efSearch);

    /// <summary><see cref="Search(ReadOnlySpan{float}, int, VectorFilter?, int)"/> for many queries in parallel on up to <paramref name="maxThreads"/> threads (0 = all cores).</summary>
    public IReadOnlyList<VectorHit>[] SearchBatch(IReadOnlyList<float[]> queries, int k, VectorFilter? filter = null, int maxThreads = 0, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(queries);
        var results = new IReadOnlyList<VectorHit>[queries.Count];
        var options = new ParallelOptions { MaxDegreeOfParallelism = Threads(maxThreads), CancellationToken = ct };
        Parallel.For(0, queries.Count, options, i => results[i] = Search(queries[i], k, filter, parallel: false, efSearch: 0));
        return results;
    }

    /// <inheritdoc/>
    public void Save(string path)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        _saveGate.EnterWriteLock();
        try { WriteFile(path); }
        finally { _saveGate.ExitWriteLock(); }
    }

    private protected abstract void WriteFile(string path);

    private protected static int Threads(int maxThreads) => maxThreads <= 0 ? Environment.ProcessorCount : maxThreads;

    /// <summary>The rows, full-precision and metadata sections of the file; the caller supplies the upper links.</summary>
    private protected (long, Action<Stream>)[] StorageSections((long, Action<Stream>) upperLinks)
    {
        int slots = Storage.SlotCount;
        var metadata = new MemoryStream();
        using (var w = new BinaryWriter(metadata, System.Text.Encoding.UTF8, leaveOpen: true)) Storage.WriteMetadata(w);
        return
        [
            ((long)slots * Storage.Rows.RowBytes, s => Storage.Rows.WriteTo(s, slots)),
            (Storage.Full is { } full ? (long)slots * full.RowBytes : 0, s => Storage.Full?.WriteTo(s, slots)),
            upperLinks,
            (metadata.Length, s => metadata.WriteTo(s)),
        ];
    }

    /// <summary>Maps (or copies) a verified file's rows into a new storage and restores its bookkeeping.</summary>
    private protected static unsafe VectorStorage RestoreStorage(string path, IndexFile.Header h, MappedFile map, (long Offset, long Length)[] sections, int tailBytes, bool copy)
    {
        var storage = new VectorStorage(h.Dimension, h.Metric, h.Quantization, h.HasFullPrecision, tailBytes);
        try
        {
            if (storage.Rows.RowBytes != h.RowBytes) throw IndexFile.Corrupt(path, $"row size {h.RowBytes} does not match the parameters (expected {storage.Rows.RowBytes})");
            IndexFile.ExpectLength(path, sections, IndexFile.Section.Rows, (long)h.SlotCount * h.RowBytes);
            IndexFile.ExpectLength(path, sections, IndexFile.Section.FullPrecision, storage.Full is null ? 0 : (long)h.SlotCount * storage.Full.RowBytes);
            storage.Rows.Adopt(map.Pointer + sections[(int)IndexFile.Section.Rows].Offset, h.SlotCount, copy);
            storage.Full?.Adopt(map.Pointer + sections[(int)IndexFile.Section.FullPrecision].Offset, h.SlotCount, copy);
            var (mdOffset, mdLength) = sections[(int)IndexFile.Section.Metadata];
            using var mdStream = new UnmanagedMemoryStream(map.Pointer + mdOffset, mdLength);
            using var reader = new BinaryReader(mdStream, System.Text.Encoding.UTF8);
            try { storage.Restore(h.SlotCount, reader, copy ? null : map, path); }
            catch (Exception e) when (e is EndOfStreamException or FormatException or ArgumentException)
            {
                throw IndexFile.Corrupt(path, $"metadata section is malformed ({e.Message})");
            }
            if (storage.LiveCount != h.LiveCount) throw IndexFile.Corrupt(path, $"header says {h.LiveCount} live vectors, rows hold {storage.LiveCount}");
            return storage;
        }
        catch
        {
            storage.Dispose();
            throw;
        }
    }

    /// <summary>The memory report fields common to both indexes.</summary>
    private protected IndexMemoryReport BaseMemory(long graphBytes)
    {
        int slots = Storage.SlotCount;
        return new IndexMemoryReport(Storage.LiveCount, slots,
            (long)slots * Storage.VectorBytes,
            (long)slots * (Storage.Rows.RowBytes - Storage.VectorBytes) + graphBytes,
            Storage.Full is { } full ? (long)slots * full.RowBytes : 0,
            Storage.MetadataBytes(), Storage.IdMapBytes());
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_disposed) return;
        _saveGate.EnterWriteLock();
        try
        {
            _disposed = true;
            DisposeCore();
            Storage.Dispose();
        }
        finally { _saveGate.ExitWriteLock(); }
        GC.SuppressFinalize(this);
    }

    private protected virtual void DisposeCore() { }
}
