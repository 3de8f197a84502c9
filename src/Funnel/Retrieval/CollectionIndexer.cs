using System.Diagnostics;
using Funnel.Inference;

namespace Funnel.Retrieval;

public sealed record IndexingOptions
{
    /// <summary>Documents per write-ahead-log batch: a crash loses at most the batch in flight.</summary>
    public int BatchSize { get; init; } = 64;

    /// <summary>Skip documents stored already with the same title, text and metadata, so re-running an ingest only does what is missing.</summary>
    public bool SkipUnchanged { get; init; } = true;
}

/// <summary>Where an ingest stands: documents read, written (new or changed), skipped as unchanged, and chunks embedded.</summary>
public readonly record struct IndexingProgress(long DocumentsRead, long DocumentsWritten, long DocumentsUnchanged, long Chunks, TimeSpan Elapsed)
{
    public double DocumentsPerSecond => Elapsed.TotalSeconds > 0 ? DocumentsRead / Elapsed.TotalSeconds : 0;
}

/// <summary>Feeds documents into a collection in durable batches (chunk → embed → log → apply), and re-embeds collections.</summary>
public static class CollectionIndexer
{
    /// <summary>
    /// Adds or replaces <paramref name="documents"/> in batches, then checkpoints. Cancellation stops between batches:
    /// every batch acknowledged before it is kept (and checkpointed), so running the same ingest again completes it.
    /// </summary>
    public static async Task<IndexingProgress> IndexAsync(Collection collection, SentenceEncoder biEncoder, IAsyncEnumerable<Document> documents,
        IndexingOptions? options = null, IProgress<IndexingProgress>? progress = null, CancellationToken ct = default)
    {
        options ??= new IndexingOptions();
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(options.BatchSize);
        collection.EnsureBiEncoder(biEncoder.Fingerprint);
        var embedder = new DocumentEmbedder(biEncoder, collection.Manifest.Chunking);
        var clock = Stopwatch.StartNew();
        long read = 0, written = 0, unchanged = 0, chunks = 0;
        var batch = new List<Document>(options.BatchSize);
        IndexingProgress Now() => new(read, written, unchanged, chunks, clock.Elapsed);

        void Flush()
        {
            if (batch.Count == 0) return;
            IReadOnlyList<EmbeddedDocument> embedded = embedder.Embed(batch, ct);
            collection.Upsert(embedded);
            written += batch.Count;
            chunks += embedded.Sum(e => e.Chunks.Count);
            batch.Clear();
            progress?.Report(Now());
        }

        try
        {
            await foreach (Document document in documents.WithCancellation(ct))
            {
                read++;
                if (options.SkipUnchanged && collection.ContainsUnchanged(document))
                {
                    unchanged++;
                    continue;
                }
                batch.Add(document);
                if (batch.Count == options.BatchSize)
                {
                    ct.ThrowIfCancellationRequested();
                    Flush();
                }
            }
            Flush();
        }
        catch (OperationCanceledException)
        {
            collection.Checkpoint();
            throw;
        }
        collection.Checkpoint();
        progress?.Report(Now());
        return Now();
    }

    /// <summary>
    /// Chunks, embeds and stores one batch of documents (new or replacing same-id ones) durably, without a checkpoint: what a
    /// service does per write request. Returns the batch's log sequence number. Thread-safe; concurrent calls embed in parallel.
    /// </summary>
    public static long Upsert(Collection collection, SentenceEncoder biEncoder, IReadOnlyList<Document> documents, CancellationToken ct = default)
    {
        collection.EnsureBiEncoder(biEncoder.Fingerprint);
        return collection.Upsert(new DocumentEmbedder(biEncoder, collection.Manifest.Chunking).Embed(documents, ct));
    }

    /// <summary>
    /// Re-embeds every document of <paramref name="collection"/> with <paramref name="biEncoder"/> (re-chunked for its window unless
    /// <paramref name="chunking"/> is given) and commits the new vectors atomically; see <see cref="Collection.Rebuild"/>.
    /// </summary>
    public static IndexingProgress Reindex(Collection collection, SentenceEncoder biEncoder, ChunkingOptions? chunking = null, int batchSize = 64,
        IProgress<IndexingProgress>? progress = null, CancellationToken ct = default)
    {
        chunking ??= Collection.DefaultChunking(biEncoder.MaxDocumentTokens);
        var embedder = new DocumentEmbedder(biEncoder, chunking);
        var clock = Stopwatch.StartNew();
        long chunks = 0, done = 0;
        collection.Rebuild(biEncoder.Fingerprint, chunking, batch =>
        {
            IReadOnlyList<EmbeddedDocument> embedded = embedder.Embed(batch, ct);
            chunks += embedded.Sum(e => e.Chunks.Count);
            return embedded;
        }, batchSize, new InlineProgress(n =>
        {
            done = n;
            progress?.Report(new IndexingProgress(n, n, 0, chunks, clock.Elapsed));
        }), ct);
        return new IndexingProgress(done, done, 0, chunks, clock.Elapsed);
    }

    /// <summary>Reports synchronously on the calling thread (<see cref="Progress{T}"/> would post to the thread pool and reorder).</summary>
    private sealed class InlineProgress(Action<int> report) : IProgress<int>
    {
        public void Report(int value) => report(value);
    }
}
