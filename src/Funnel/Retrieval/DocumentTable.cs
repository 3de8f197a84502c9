using Funnel.Index;
using Funnel.Retrieval.Storage;

namespace Funnel.Retrieval;

/// <summary>
/// A collection's documents and chunks: the only maps from document ids and from chunk ids (the vector index's ids) to the
/// stored documents, and where metadata filters are evaluated, for both retrievers. Not thread-safe: the collection's
/// reader-writer lock guards it.
/// </summary>
internal sealed class DocumentTable
{
    private readonly Dictionary<string, StoredDocument> _documents = new(StringComparer.Ordinal);
    private readonly Dictionary<long, StoredDocument> _chunkOwners = [];

    /// <summary>The next unused chunk id (ids are never reused, so a replaced chunk's id cannot come back).</summary>
    public long NextChunkId { get; set; }

    public int DocumentCount => _documents.Count;

    public int ChunkCount => _chunkOwners.Count;

    public IReadOnlyCollection<StoredDocument> Documents => _documents.Values;

    public IReadOnlyCollection<string> Ids => _documents.Keys;

    public bool Contains(string id) => _documents.ContainsKey(id);

    public StoredDocument? Find(string id) => _documents.GetValueOrDefault(id);

    /// <summary>The document a chunk of the vector index belongs to, or null (a chunk inserted and not yet published, or removed).</summary>
    public StoredDocument? OwnerOf(long chunkId) => _chunkOwners.GetValueOrDefault(chunkId);

    /// <summary>Ids for <paramref name="count"/> new chunks.</summary>
    public long[] NewChunkIds(int count)
    {
        var ids = new long[count];
        for (int i = 0; i < count; i++) ids[i] = NextChunkId++;
        return ids;
    }

    /// <summary>Adds a document (the caller has removed any with its id).</summary>
    public void Add(StoredDocument stored)
    {
        _documents[stored.Document.Id] = stored;
        foreach (long id in stored.ChunkIds)
        {
            _chunkOwners[id] = stored;
            NextChunkId = Math.Max(NextChunkId, id + 1);
        }
    }

    /// <summary>Removes a document and its chunks; returns it, or null when there was none.</summary>
    public StoredDocument? Remove(string id)
    {
        if (!_documents.Remove(id, out StoredDocument? old)) return null;
        foreach (long chunk in old.ChunkIds) _chunkOwners.Remove(chunk);
        return old;
    }

    public void Clear()
    {
        _documents.Clear();
        _chunkOwners.Clear();
    }

    /// <summary>The text of one chunk of a document (or the whole text for chunk -1 or one out of range), or null when it is absent.</summary>
    public string? Passage(string id, int chunkIndex)
    {
        if (!_documents.TryGetValue(id, out StoredDocument? s)) return null;
        string text = s.Document.FullText;
        if (chunkIndex < 0 || chunkIndex >= s.Chunks.Length) return text;
        ChunkSpan span = s.Chunks[chunkIndex];
        return text[span.Start..span.End];
    }

    /// <summary>True when a document with this id is stored with exactly this title, text and metadata.</summary>
    public bool HoldsUnchanged(Document document) =>
        _documents.TryGetValue(document.Id, out StoredDocument? s) && s.Document.Title == document.Title && s.Document.Text == document.Text &&
        s.Document.Metadata.Count == document.Metadata.Count &&
        document.Metadata.All(kv => s.Document.Metadata.TryGetValue(kv.Key, out string? v) && v == kv.Value);

    /// <summary>The vector index's view of a metadata filter: chunks whose document matches (null: no filter).</summary>
    public VectorFilter? ChunkFilter(MetadataFilter? filter) =>
        filter is null ? null : VectorFilter.Where(id => _chunkOwners.TryGetValue(id, out StoredDocument? s) && filter.Matches(s.Document.Metadata));

    /// <summary>BM25's view of a metadata filter: documents that match (null: no filter).</summary>
    public Func<string, bool>? DocumentFilter(MetadataFilter? filter) =>
        filter is null ? null : id => _documents.TryGetValue(id, out StoredDocument? s) && filter.Matches(s.Document.Metadata);
}
