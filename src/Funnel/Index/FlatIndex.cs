namespace Funnel.Index;

/// <summary>
/// Exact search: every live vector is scored with the SIMD kernels into a bounded top-k heap; large indexes
/// are scanned by several threads, each with its own heap, merged at the end. The ground truth for
/// <see cref="HnswIndex"/> and the right choice below a few thousand vectors.
/// </summary>
public sealed class FlatIndex : VectorIndex
{
    /// <summary>Below this many slots one thread scans faster than several.</summary>
    private const int ParallelScanThreshold = 32_768;
    private readonly int _maxThreads;

    /// <summary>An empty exact index.</summary>
    /// <param name="dimension">Vector length.</param>
    /// <param name="metric">How vectors compare.</param>
    /// <param name="quantization">Vector storage; int8 keeps floats beside the codes and rescores with them.</param>
    /// <param name="maxThreads">Threads for scanning one query (0 = all cores).</param>
    public FlatIndex(int dimension, DistanceMetric metric = DistanceMetric.Cosine, VectorQuantization quantization = VectorQuantization.None, int maxThreads = 0)
        : this(new VectorStorage(dimension, metric, quantization, keepFullPrecision: true, tailBytes: 0), maxThreads)
    {
    }

    private FlatIndex(VectorStorage storage, int maxThreads) : base(storage) => _maxThreads = Threads(maxThreads);

    /// <summary>Memory-maps a saved flat index (copy-on-write: it stays writable, the file is never changed).</summary>
    public static new FlatIndex Open(string path) => Read(path, copy: false);

    /// <summary>Reads a saved flat index fully into memory.</summary>
    public static new FlatIndex Load(string path) => Read(path, copy: true);

    private static FlatIndex Read(string path, bool copy)
    {
        var (h, map, sections) = IndexFile.Open(path, IndexFile.Kind.Flat);
        try
        {
            IndexFile.ExpectLength(path, sections, IndexFile.Section.UpperLinks, 0);
            var index = new FlatIndex(RestoreStorage(path, h, map, sections, tailBytes: 0, copy), 0);
            if (copy) map.Dispose();
            return index;
        }
        catch
        {
            map.Dispose();
            throw;
        }
    }

    /// <inheritdoc/>
    public override IndexMemoryReport Memory => BaseMemory(0);

    private protected override void UpsertPrepared(long id, float[] prepared, IReadOnlyDictionary<string, string>? metadata)
    {
        var claim = Storage.Claim(id);
        Storage.Write(claim.Slot, id, prepared, metadata);
    }

    private protected override List<VectorHit> SearchPrepared(SearchScratch scratch, in QueryRef q, int k, VectorFilter? filter, bool parallel, int efSearch)
    {
        bool rescore = Storage.Quantization == VectorQuantization.Int8 && Storage.Full is not null;
        int threads = parallel ? Math.Min(_maxThreads, Storage.SlotCount / ParallelScanThreshold) : 1;
        return Storage.ExactSearch(q, k, filter, rescore, scratch, threads);
    }

    private protected override void WriteFile(string path)
    {
        var h = new IndexFile.Header(IndexFile.Kind.Flat, Dimension, Metric, Storage.Quantization, Storage.Full is not null,
            Storage.SlotCount, Storage.LiveCount, Storage.Rows.RowBytes, 0, 0, 0, -1, 0, 0, 0);
        IndexFile.Write(path, h, StorageSections((0, _ => { })));
    }
}
