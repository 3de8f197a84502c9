using Funnel.IO;
using Funnel.Index;
using Funnel.Inference;
using Funnel.Retrieval.Lexical;
using Funnel.Retrieval.Storage;

namespace Funnel.Retrieval;

/// <summary>How a new collection chunks and indexes. Unset chunking follows the bi-encoder's window.</summary>
public sealed record CollectionOptions
{
    public ChunkingOptions? Chunking { get; init; }
    public VectorIndexSettings VectorIndex { get; init; } = new();
    public Bm25Options Bm25 { get; init; } = new();
}

/// <summary>A document ready to store: its chunks (spans of <see cref="Document.FullText"/>) and one vector per chunk.</summary>
public sealed record EmbeddedDocument(Document Document, IReadOnlyList<ChunkSpan> Chunks, IReadOnlyList<float[]> Vectors);

/// <summary>A first-stage hit: a document, its score, and for dense hits the chunk that scored best (else -1).</summary>
public readonly record struct DocumentHit(string DocumentId, float Score, int ChunkIndex);

/// <summary>What opening a collection had to recover from its write-ahead log.</summary>
public readonly record struct RecoveryInfo(int ReplayedBatches, long TornBytes);

/// <summary>
/// What <see cref="Collection.Recover"/> kept and lost: batches replayed, damaged log ranges skipped, batch numbers lost in
/// them, batches dropped because they could not be applied, the torn tail, an inconsistent manifest, and where the damaged
/// log was copied (null when nothing was damaged).
/// </summary>
public sealed record CollectionRecoveryReport(int KeptBatches, IReadOnlyList<Storage.WalDamage> DamagedRanges, IReadOnlyList<long> LostBatches,
    IReadOnlyList<long> DroppedBatches, long TornBytes, string? ManifestProblem, string? DamagedLogCopy, int Documents)
{
    public bool LostAnything => DamagedRanges.Count > 0 || DroppedBatches.Count > 0 || LostBatches.Count > 0;
}

/// <summary>The collection's vectors come from another bi-encoder than the one offered.</summary>
public sealed class BiEncoderMismatchException(string message) : FunnelException(FunnelErrorKind.Conflict, message);

/// <summary>An add found a document with this id already stored (<see cref="Index"/>: its position in the batch); nothing was written.</summary>
public sealed class DocumentExistsException(string documentId, int index, string message) : FunnelException(FunnelErrorKind.Conflict, message)
{
    public string DocumentId { get; } = documentId;

    public int Index { get; } = index;
}

/// <summary>The folder cannot be used as asked: it holds something else, or another process is writing the collection.</summary>
public sealed class CollectionFolderException(string message, Exception? inner = null) : FunnelException(FunnelErrorKind.Conflict, message, inner);

/// <summary>
/// A collection folder: documents, their chunks, a vector index (one vector per chunk) and a BM25 index (per document),
/// kept consistent and crash-safe. Changes go to a write-ahead log (fsynced before they are acknowledged) and are applied in
/// memory; checkpoints write all snapshots into a new generation folder and commit it by rewriting <c>manifest.json</c>
/// atomically. Opening loads the committed generation and replays the log's intact records. See docs/file-formats.md, "Collection format".
/// <para>One writer (a process holding the folder's <c>LOCK</c>) at a time; any number of concurrent searches. A read-only
/// open sees the state as of its opening.</para>
/// </summary>
public sealed class Collection : IDisposable
{
    private const int MaxOpenAttempts = 3;

    private readonly ReaderWriterLockSlim _state = new(LockRecursionPolicy.NoRecursion);
    private readonly SemaphoreSlim _writeGate = new(1, 1);
    private readonly DocumentTable _table = new();
    private readonly FileStream? _writerLock;
    private IVectorIndex _vectors;
    private Bm25Index _bm25;
    private readonly CollectionLog _log;
    private bool _disposed;

    private Collection(string folder, CollectionManifest manifest, FileStream? writerLock, IVectorIndex vectors, Bm25Index bm25)
    {
        Folder = folder;
        _log = new CollectionLog(folder, manifest);
        _writerLock = writerLock;
        _vectors = vectors;
        _bm25 = bm25;
    }

    public string Folder { get; }

    public CollectionManifest Manifest => _log.Manifest;

    public ModelFingerprint BiEncoder => Manifest.BiEncoder;

    public bool IsReadOnly => _writerLock is null;

    /// <summary>What <see cref="Open"/> replayed from the log and cut off as a torn tail.</summary>
    public RecoveryInfo Recovery { get; private set; }

    /// <summary>A checkpoint is taken after a write once the log holds more than this many bytes.</summary>
    public long AutoCheckpointBytes { get; set; } = 256L << 20;

    public int DocumentCount => WithReadLock(() => _table.DocumentCount);

    public int ChunkCount => WithReadLock(() => _table.ChunkCount);

    /// <summary>Vectors in the vector index and documents in the BM25 index (they match <see cref="ChunkCount"/> and <see cref="DocumentCount"/>).</summary>
    internal (int Vectors, int Bm25Documents) IndexCounts() => WithReadLock(() => (_vectors.Count, _bm25.Count));

    public static string GenerationFolder(string folder, long generation) => CollectionFolder.Generation(folder, generation);

    public static string LogPath(string folder, long generation) => CollectionFolder.Log(folder, generation);

    /// <summary>
    /// Creates an empty collection in <paramref name="folder"/> (created if needed; it must hold nothing else) for vectors of
    /// <paramref name="biEncoder"/>; unless <paramref name="options"/> says otherwise, chunks fill the encoder's window.
    /// </summary>
    public static Collection Create(string folder, SentenceEncoder biEncoder, CollectionOptions? options = null)
    {
        ChunkingOptions chunking = options?.Chunking ?? DefaultChunking(biEncoder.MaxDocumentTokens);
        DocumentEmbedder.CheckFits(chunking, biEncoder, nameof(options));
        return Create(folder, biEncoder.Fingerprint, (options ?? new CollectionOptions()) with { Chunking = chunking });
    }

    /// <summary>Creates an empty collection for vectors of the model <paramref name="biEncoder"/> identifies, chunked as <paramref name="options"/> says.</summary>
    public static Collection Create(string folder, ModelFingerprint biEncoder, CollectionOptions options)
    {
        folder = Path.GetFullPath(folder);
        if (File.Exists(folder)) throw new CollectionFolderException($"'{folder}' is a file; a new collection needs an empty or new folder");
        ChunkingOptions chunking = options.Chunking ?? throw new ArgumentException("CollectionOptions.Chunking is required here", nameof(options));
        chunking.Validate();
        if (File.Exists(Path.Combine(folder, CollectionManifest.FileName)))
            throw new CollectionFolderException($"'{folder}' already holds a collection");
        if (Directory.Exists(folder) && Directory.EnumerateFileSystemEntries(folder).Any(entry => !CollectionFolder.IsCollectionFile(Path.GetFileName(entry))))
            throw new CollectionFolderException($"'{folder}' is not empty; a new collection needs an empty or new folder");
        Directory.CreateDirectory(folder);

        var now = DateTimeOffset.UtcNow;
        var manifest = new CollectionManifest
        {
            BiEncoder = biEncoder, Chunking = chunking, VectorIndex = options.VectorIndex, Bm25 = options.Bm25,
            Created = now, Updated = now,
        };
        using (FileStream writerLock = CollectionFolder.AcquireWriterLock(folder))
        using (IVectorIndex vectors = manifest.VectorIndex.Create(manifest.BiEncoder.Dimension))
        {
            CollectionFolder.WriteSnapshot(GenerationFolder(folder, 0), [], 0, vectors, new Bm25Index(options: options.Bm25));
            manifest.Write(folder);
        }
        return Open(folder);
    }

    /// <summary>
    /// Opens the collection in <paramref name="folder"/> for writing, checking it holds vectors of <paramref name="biEncoder"/>,
    /// or creates it there when the folder has none (e.g. a cache of an evaluation's corpus).
    /// </summary>
    public static Collection OpenOrCreate(string folder, SentenceEncoder biEncoder, CollectionOptions? options = null)
    {
        if (!File.Exists(Path.Combine(folder, CollectionManifest.FileName))) return Create(folder, biEncoder, options);
        Collection collection = Open(folder);
        try
        {
            collection.EnsureBiEncoder(biEncoder.Fingerprint);
            return collection;
        }
        catch
        {
            collection.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The default chunking for chunks of at most <paramref name="maxTokens"/> wordpieces (a bi-encoder's
    /// <see cref="SentenceEncoder.MaxDocumentTokens"/>: its whole window), with an eighth (at most 32 wordpieces) as overlap.
    /// </summary>
    public static ChunkingOptions DefaultChunking(int maxTokens) =>
        new() { MaxTokens = maxTokens, OverlapTokens = Math.Min(32, maxTokens / 8) };

    /// <summary>
    /// Opens a collection: loads its last checkpoint and replays the write-ahead log after it. A writable open takes the
    /// folder's writer lock, cuts off a torn log tail and removes leftovers of interrupted checkpoints.
    /// </summary>
    public static Collection Open(string folder, bool readOnly = false)
    {
        folder = Path.GetFullPath(folder);
        _ = CollectionManifest.Read(folder); // fail on a folder that is not a collection before touching it
        FileStream? writerLock = readOnly ? null : CollectionFolder.AcquireWriterLock(folder);
        try
        {
            for (int attempt = 1; ; attempt++)
            {
                CollectionManifest manifest = CollectionManifest.Read(folder);
                try
                {
                    return Load(folder, manifest, writerLock);
                }
                catch (Exception e) when (readOnly && attempt < MaxOpenAttempts && e is FileNotFoundException or DirectoryNotFoundException or InvalidDataException
                                          && CollectionManifest.Read(folder).Generation != manifest.Generation)
                {
                    // A writer committed a checkpoint and removed the generation we were reading: read the new one.
                }
            }
        }
        catch
        {
            writerLock?.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Loads the committed generation and replays its log (<see cref="CollectionLog.Replay"/>: without <paramref name="salvage"/>
    /// any damage other than a torn tail throws before anything is changed; with it the log is left for the caller to replace).
    /// </summary>
    private static Collection Load(string folder, CollectionManifest manifest, FileStream? writerLock, LogSalvage? salvage = null)
    {
        var (documents, nextChunkId, vectors, bm25) = CollectionFolder.ReadSnapshot(GenerationFolder(folder, manifest.Generation), manifest.VectorIndex, mapped: writerLock is null);
        var collection = new Collection(folder, manifest, writerLock, vectors, bm25);
        try
        {
            collection._table.NextChunkId = nextChunkId;
            foreach (StoredDocument stored in documents) collection._table.Add(stored);
            (WalScan scan, int replayed) = collection._log.Replay(collection.Apply, salvage);
            collection.Recovery = new RecoveryInfo(replayed, scan.TornBytes);
            if (salvage is null && writerLock is not null)
            {
                collection._log.OpenForAppend(scan);
                CollectionFolder.RemoveLeftovers(folder, manifest.Generation);
            }
            return collection;
        }
        catch
        {
            collection._vectors.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Repairs a collection that <see cref="Open"/> refuses as corrupt: replays every intact batch of the log (skipping
    /// damaged ranges and batches that cannot be applied), keeps a copy of the damaged log beside it, and commits the result
    /// as a new generation (atomically: until the manifest is rewritten the collection is as it was). The report says what
    /// was kept and what was lost. Needs the folder's writer lock.
    /// </summary>
    public static CollectionRecoveryReport Recover(string folder)
    {
        folder = Path.GetFullPath(folder);
        CollectionManifest manifest = CollectionManifest.Read(folder);
        FileStream writerLock = CollectionFolder.AcquireWriterLock(folder);
        Collection? collection = null;
        try
        {
            var salvage = new LogSalvage();
            collection = Load(folder, manifest, writerLock, salvage);
            string? copy = collection._log.ResumeAfter(salvage);
            collection.CheckpointLocked();
            return salvage.Report(manifest.WalSequence, copy, collection.DocumentCount);
        }
        finally
        {
            if (collection is not null) collection.Dispose();
            else writerLock.Dispose();
        }
    }

    /// <summary>Throws <see cref="BiEncoderMismatchException"/> unless <paramref name="biEncoder"/> makes the vectors this collection holds.</summary>
    public void EnsureBiEncoder(ModelFingerprint biEncoder)
    {
        if (BiEncoder.IsCompatibleWith(biEncoder)) return;
        string reindex = $"re-index the collection with `funnel reindex --collection {Folder} --bi-encoder <model>`";
        if (BiEncoder.IsCompatibleWith(biEncoder with { QueryPrompt = BiEncoder.QueryPrompt, DocumentPrompt = BiEncoder.DocumentPrompt }))
            throw new BiEncoderMismatchException(
                $"collection '{Folder}' was indexed with bi-encoder {BiEncoder.Model} using {Prompts(BiEncoder)}; {biEncoder.Model} has the same weights " +
                $"but uses {Prompts(biEncoder)}, so its vectors are not comparable. Use the model with the collection's prompts " +
                $"(config_sentence_transformers.json), or {reindex}.");
        throw new BiEncoderMismatchException(
            $"collection '{Folder}' was indexed with bi-encoder {Describe(BiEncoder)}, not {Describe(biEncoder)}; their vectors are not comparable. " +
            $"Use the same model, or {reindex}.");
    }

    public Document? Get(string id) => WithReadLock(() => _table.Find(id)?.Document);

    /// <summary>The text of one chunk of a document (or the whole text for chunk -1), or null when the document is absent.</summary>
    public string? GetPassage(string id, int chunkIndex) => WithReadLock(() => _table.Passage(id, chunkIndex));

    /// <summary>True when a document with this id is stored with exactly this title, text and metadata.</summary>
    public bool ContainsUnchanged(Document document) => WithReadLock(() => _table.HoldsUnchanged(document));

    /// <summary>A snapshot of the ids of all documents, in no particular order.</summary>
    public IReadOnlyList<string> DocumentIds() => WithReadLock(() => _table.Ids.ToArray());

    /// <summary>
    /// Inserts or replaces documents as one batch: durable (fsynced to the log) and visible to searches when this returns.
    /// Returns the batch's log sequence number.
    /// </summary>
    public long Upsert(IReadOnlyList<EmbeddedDocument> documents)
    {
        ThrowIfNotWritable();
        int dimension = BiEncoder.Dimension;
        foreach (EmbeddedDocument d in documents) Validate(d, dimension);
        if (documents.Count == 0) return _log.LastSequence;
        _writeGate.Wait();
        try
        {
            return Commit(Operations(documents));
        }
        finally
        {
            _writeGate.Release();
        }
    }

    /// <summary>
    /// As <see cref="Upsert"/>, waiting for the writer gate asynchronously and writing on the thread pool. Cancellation stops it
    /// only before the batch is logged: a batch that reached the log is applied and acknowledged.
    /// </summary>
    public Task<long> UpsertAsync(IReadOnlyList<EmbeddedDocument> documents, CancellationToken ct = default) => WriteAsync(documents, addOnly: false, ct);

    /// <summary>
    /// As <see cref="UpsertAsync"/>, but only for new documents: when a document with one of these ids is stored, nothing is
    /// written and <see cref="DocumentExistsException"/> names the first. The check and the write are one step under the
    /// writer gate, so of concurrent adds of one id exactly one succeeds.
    /// </summary>
    public Task<long> AddAsync(IReadOnlyList<EmbeddedDocument> documents, CancellationToken ct = default) => WriteAsync(documents, addOnly: true, ct);

    private async Task<long> WriteAsync(IReadOnlyList<EmbeddedDocument> documents, bool addOnly, CancellationToken ct)
    {
        ThrowIfNotWritable();
        int dimension = BiEncoder.Dimension;
        foreach (EmbeddedDocument d in documents) Validate(d, dimension);
        if (documents.Count == 0) return _log.LastSequence;
        await _writeGate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            ct.ThrowIfCancellationRequested();
            if (addOnly && WithReadLock(() => documents.Select((d, i) => (d.Document.Id, i)).FirstOrDefault(d => _table.Contains(d.Id))) is { Id: { } id } taken)
                throw new DocumentExistsException(id, taken.i, $"collection '{Path.GetFileName(Folder)}' already has a document '{id}'");
            return await Task.Run(() => Commit(Operations(documents)), CancellationToken.None).ConfigureAwait(false);
        }
        finally
        {
            _writeGate.Release();
        }
    }

    /// <summary>As <see cref="Delete"/>, waiting for the writer gate asynchronously; cancellation stops it only before the batch is logged.</summary>
    public async Task<int> DeleteAsync(IReadOnlyCollection<string> ids, CancellationToken ct = default)
    {
        ThrowIfNotWritable();
        await _writeGate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            ct.ThrowIfCancellationRequested();
            var operations = DeleteOperations(ids);
            if (operations.Count > 0) await Task.Run(() => Commit(operations), CancellationToken.None).ConfigureAwait(false);
            return operations.Count;
        }
        finally
        {
            _writeGate.Release();
        }
    }

    /// <summary>The batch that stores <paramref name="documents"/> under new chunk ids (the caller holds the writer gate).</summary>
    private List<CollectionOperation> Operations(IReadOnlyList<EmbeddedDocument> documents)
    {
        var operations = new List<CollectionOperation>(documents.Count);
        foreach (EmbeddedDocument d in documents)
            operations.Add(new UpsertOperation(new StoredDocument(d.Document, d.Chunks.ToArray(), _table.NewChunkIds(d.Chunks.Count)), d.Vectors.ToArray()));
        return operations;
    }

    private List<CollectionOperation> DeleteOperations(IReadOnlyCollection<string> ids) =>
        WithReadLock(() => ids.Distinct(StringComparer.Ordinal).Where(_table.Contains).Select(id => (CollectionOperation)new DeleteOperation(id)).ToList());

    /// <summary>Deletes the documents with these ids (absent ones are ignored) as one durable batch; returns how many were deleted.</summary>
    public int Delete(IReadOnlyCollection<string> ids)
    {
        ThrowIfNotWritable();
        _writeGate.Wait();
        try
        {
            var operations = DeleteOperations(ids);
            if (operations.Count > 0) Commit(operations);
            return operations.Count;
        }
        finally
        {
            _writeGate.Release();
        }
    }

    /// <summary>Writes all snapshots as a new generation and empties the log (nothing to do when the log is empty).</summary>
    public void Checkpoint()
    {
        ThrowIfNotWritable();
        _writeGate.Wait();
        try
        {
            if (_log.HasUncheckpointed) CheckpointLocked();
        }
        finally
        {
            _writeGate.Release();
        }
    }

    /// <summary>
    /// Replaces every vector with those of another bi-encoder (re-chunked with <paramref name="chunking"/>; <paramref name="embed"/>
    /// chunks and embeds one batch of documents) and commits them as a new generation. Other writes wait; searches see the old
    /// vectors until the commit; a crash or cancellation before it leaves the collection as it was. Reports documents done.
    /// </summary>
    public void Rebuild(ModelFingerprint biEncoder, ChunkingOptions chunking, Func<IReadOnlyList<Document>, IReadOnlyList<EmbeddedDocument>> embed,
        int batchSize = 256, IProgress<int>? progress = null, CancellationToken ct = default)
    {
        ThrowIfNotWritable();
        chunking.Validate();
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        _writeGate.Wait(ct);
        try
        {
            if (_log.HasUncheckpointed) CheckpointLocked();
            CollectionManifest current = Manifest;
            var manifest = current with { BiEncoder = biEncoder, Chunking = chunking };
            List<Document> documents = WithReadLock(() => _table.Documents.Select(s => s.Document).ToList());
            var rebuilt = new List<StoredDocument>(documents.Count);
            long nextChunkId = 0;
            IVectorIndex vectors = manifest.VectorIndex.Create(manifest.BiEncoder.Dimension);
            try
            {
                foreach (Document[] batch in documents.Chunk(batchSize))
                {
                    ct.ThrowIfCancellationRequested();
                    IReadOnlyList<EmbeddedDocument> embedded = embed(batch);
                    if (embedded.Count != batch.Length) throw new InvalidOperationException($"embedding {batch.Length} documents returned {embedded.Count}");
                    var records = new List<VectorRecord>();
                    for (int d = 0; d < batch.Length; d++)
                    {
                        if (!ReferenceEquals(embedded[d].Document, batch[d]) && embedded[d].Document != batch[d])
                            throw new InvalidOperationException($"embedding returned document '{embedded[d].Document.Id}' in place of '{batch[d].Id}'");
                        Validate(embedded[d], biEncoder.Dimension);
                        long[] ids = new long[embedded[d].Chunks.Count];
                        for (int i = 0; i < ids.Length; i++)
                        {
                            ids[i] = nextChunkId++;
                            records.Add(new VectorRecord(ids[i], embedded[d].Vectors[i]));
                        }
                        rebuilt.Add(new StoredDocument(batch[d], embedded[d].Chunks.ToArray(), ids));
                    }
                    vectors.AddBatch(records, ct: ct);
                    progress?.Report(rebuilt.Count);
                }

                long generation = current.Generation + 1;
                CollectionFolder.WriteSnapshot(GenerationFolder(Folder, generation), rebuilt, nextChunkId, vectors, _bm25);
                _log.Commit(manifest with { Generation = generation, Counts = new(rebuilt.Count, (int)nextChunkId) });

                IVectorIndex old;
                _state.EnterWriteLock();
                try
                {
                    old = _vectors;
                    _vectors = vectors;
                    _table.Clear();
                    _table.NextChunkId = nextChunkId;
                    foreach (StoredDocument stored in rebuilt) _table.Add(stored);
                }
                finally
                {
                    _state.ExitWriteLock();
                }
                old.Dispose();
            }
            catch
            {
                if (!ReferenceEquals(vectors, _vectors)) vectors.Dispose();
                throw;
            }
        }
        finally
        {
            _writeGate.Release();
        }
    }

    /// <summary>The <paramref name="k"/> documents whose best chunk is nearest to <paramref name="query"/>, best first.</summary>
    /// <param name="efSearch">HNSW candidate list size for this search (0: the collection's); see <see cref="IVectorIndex.Search"/>.</param>
    public IReadOnlyList<DocumentHit> SearchDense(ReadOnlySpan<float> query, int k, MetadataFilter? filter = null, int efSearch = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(k);
        if (query.Length != BiEncoder.Dimension)
            throw new ArgumentException($"query vector has {query.Length} dimensions, the collection {BiEncoder.Dimension}", nameof(query));
        _state.EnterReadLock();
        try
        {
            int chunks = _table.ChunkCount;
            if (chunks == 0) return [];
            k = Math.Min(k, _table.DocumentCount); // more than every document is every document (and no overflow below)
            VectorFilter? vectorFilter = _table.ChunkFilter(filter);
            // Several chunks of one document may crowd the top: widen the chunk search until k documents are found.
            for (int wanted = (int)Math.Min(chunks, Math.Max(2L * k, k + 16L)); ; wanted = (int)Math.Min(chunks, wanted * 4L))
            {
                IReadOnlyList<VectorHit> hits = _vectors.Search(query, wanted, vectorFilter, efSearch);
                var best = new List<DocumentHit>(k);
                var seen = new HashSet<string>(StringComparer.Ordinal);
                foreach (VectorHit hit in hits)
                {
                    if (_table.OwnerOf(hit.Id) is not { } s || !seen.Add(s.Document.Id)) continue;
                    best.Add(new DocumentHit(s.Document.Id, hit.Score, Array.IndexOf(s.ChunkIds, hit.Id)));
                    if (best.Count == k) break;
                }
                if (best.Count == k || wanted == chunks || hits.Count < wanted) return best;
            }
        }
        finally
        {
            _state.ExitReadLock();
        }
    }

    /// <summary>The <paramref name="k"/> best documents for <paramref name="query"/> by BM25 over title and text.</summary>
    public IReadOnlyList<DocumentHit> SearchBm25(string query, int k, MetadataFilter? filter = null) => SearchBm25(query, k, filter, null);

    /// <summary>As <see cref="SearchBm25(string, int, MetadataFilter?)"/>, scored with collection-wide <paramref name="statistics"/>
    /// (this collection being one shard of a larger one; see <see cref="Bm25Statistics"/>).</summary>
    public IReadOnlyList<DocumentHit> SearchBm25(string query, int k, MetadataFilter? filter, Bm25Statistics? statistics)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(k);
        _state.EnterReadLock();
        try
        {
            return _bm25.Search(query, Math.Min(k, Math.Max(1, _table.DocumentCount)), _table.DocumentFilter(filter), statistics)
                .Select(h => new DocumentHit(h.DocId, h.Score, -1)).ToList();
        }
        finally
        {
            _state.ExitReadLock();
        }
    }

    /// <summary>This collection's BM25 statistics for the terms of <paramref name="query"/> (see <see cref="Bm25Index.Statistics"/>).</summary>
    public Bm25Statistics Bm25Statistics(string query) => WithReadLock(() => _bm25.Statistics(query));

    /// <summary>
    /// A stored document as it was upserted: its chunks and their vectors (as the index keeps them: normalized for cosine), or
    /// null when absent. What a replica of a shard copies to a peer that must catch up.
    /// </summary>
    public EmbeddedDocument? GetEmbedded(string id) => WithReadLock(() =>
    {
        if (_table.Find(id) is not { } stored) return null;
        var vectors = new float[stored.ChunkIds.Length][];
        for (int i = 0; i < vectors.Length; i++)
            vectors[i] = _vectors.GetVector(stored.ChunkIds[i]) ?? throw new InvalidOperationException($"document '{id}': chunk {i} has no vector in the index");
        return new EmbeddedDocument(stored.Document, stored.Chunks, vectors);
    });

    private static string Describe(ModelFingerprint f) =>
        $"{f.Model} (weights sha256 {f.WeightsSha256[..Math.Min(12, f.WeightsSha256.Length)]}…, {f.Dimension} dims, {f.Pooling} pooling{(f.Normalize ? ", normalized" : "")}, {Prompts(f)}, {f.Precision.ToString().ToLowerInvariant()})";

    private static string Prompts(ModelFingerprint f) =>
        $"query prompt {(f.QueryPrompt is null ? "none" : $"\"{f.QueryPrompt}\"")} and document prompt {(f.DocumentPrompt is null ? "none" : $"\"{f.DocumentPrompt}\"")}";

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _log.Dispose();
        _vectors.Dispose();
        _writerLock?.Dispose();
        _state.Dispose();
        _writeGate.Dispose();
    }

    private static void Validate(EmbeddedDocument d, int dimension)
    {
        string id = d.Document.Id;
        if (string.IsNullOrEmpty(id)) throw new ArgumentException("a document has an empty id");
        if (d.Chunks.Count == 0 || d.Chunks.Count != d.Vectors.Count)
            throw new ArgumentException($"document '{id}' has {d.Chunks.Count} chunks and {d.Vectors.Count} vectors; expected one vector per chunk and at least one chunk");
        int length = d.Document.FullText.Length;
        foreach (ChunkSpan c in d.Chunks)
            if (c.Start < 0 || c.End < c.Start || c.End > length) throw new ArgumentException($"document '{id}': chunk {c} is outside its text of {length} chars");
        // Checked before the batch is logged: a logged batch that cannot be applied would make every later open fail.
        foreach (float[] v in d.Vectors)
            if (UpsertOperation.VectorProblem(v, dimension) is { } problem) throw new ArgumentException($"document '{id}': {problem}");
    }

    private long Commit(List<CollectionOperation> operations)
    {
        long sequence = _log.Append(operations);
        Apply(operations);
        if (_log.Length > AutoCheckpointBytes) CheckpointLocked();
        return sequence;
    }

    /// <summary>
    /// Applies a batch to the in-memory state, in order. The slow parts happen before the write lock, while searches go on: BM25
    /// analysis of the new texts, and inserting the vectors that survive the batch into the index (its reads take no lock, and
    /// searches skip chunks no document owns yet). The write lock is held only to publish: the id maps, the BM25 postings and
    /// the removal of replaced chunks. Writers are serialized by the caller (the write gate, or a single-threaded open).
    /// </summary>
    private void Apply(List<CollectionOperation> operations)
    {
        var created = new HashSet<long>();
        var survivors = new Dictionary<long, float[]>();
        var latest = new Dictionary<string, long[]>(StringComparer.Ordinal); // a document's chunks as of this batch's last write to it
        var upserts = new List<UpsertOperation>();
        foreach (CollectionOperation operation in operations)
            switch (operation)
            {
                case UpsertOperation upsert:
                    string id = upsert.Stored.Document.Id;
                    if (latest.TryGetValue(id, out long[]? replaced)) foreach (long chunk in replaced) survivors.Remove(chunk);
                    latest[id] = upsert.Stored.ChunkIds;
                    for (int i = 0; i < upsert.Vectors.Length; i++)
                    {
                        created.Add(upsert.Stored.ChunkIds[i]);
                        survivors[upsert.Stored.ChunkIds[i]] = upsert.Vectors[i];
                    }
                    upserts.Add(upsert);
                    break;
                case DeleteOperation delete:
                    if (latest.Remove(delete.DocumentId, out long[]? deleted)) foreach (long chunk in deleted) survivors.Remove(chunk);
                    break;
            }
        var analyzed = new Bm25Index.AnalyzedText[upserts.Count];
        Parallel.For(0, upserts.Count, i => analyzed[i] = _bm25.Analyze(upserts[i].Stored.Document.FullText));
        if (survivors.Count > 0) _vectors.AddBatch(survivors.Select(p => new VectorRecord(p.Key, p.Value)).ToList());
        created.ExceptWith(survivors.Keys); // chunks of this batch that never reached the index

        _state.EnterWriteLock();
        try
        {
            int next = 0;
            foreach (CollectionOperation operation in operations)
                switch (operation)
                {
                    case UpsertOperation upsert:
                        Untrack(upsert.Stored.Document.Id, created);
                        _table.Add(upsert.Stored);
                        _bm25.Add(upsert.Stored.Document.Id, analyzed[next++]);
                        break;
                    case DeleteOperation delete:
                        Untrack(delete.DocumentId, created);
                        break;
                }
        }
        finally
        {
            _state.ExitWriteLock();
        }
    }

    /// <param name="notIndexed">Chunk ids that are not in the vector index (replaced within their own batch).</param>
    private void Untrack(string documentId, IReadOnlySet<long> notIndexed)
    {
        if (_table.Remove(documentId) is not { } old) return;
        foreach (long id in old.ChunkIds)
            if (!notIndexed.Contains(id)) _vectors.Remove(id);
        _bm25.Remove(documentId);
    }

    private void CheckpointLocked()
    {
        CollectionManifest current = Manifest;
        long generation = current.Generation + 1;
        CollectionFolder.WriteSnapshot(GenerationFolder(Folder, generation), _table.Documents, _table.NextChunkId, _vectors, _bm25);
        _log.Commit(current with { Generation = generation, WalSequence = _log.LastSequence, Counts = new(_table.DocumentCount, _table.ChunkCount) });
    }

    private void ThrowIfNotWritable()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (IsReadOnly) throw new InvalidOperationException($"collection '{Folder}' was opened read-only");
    }

    private T WithReadLock<T>(Func<T> read)
    {
        _state.EnterReadLock();
        try
        {
            return read();
        }
        finally
        {
            _state.ExitReadLock();
        }
    }
}
