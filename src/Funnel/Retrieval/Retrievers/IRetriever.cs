namespace Funnel.Retrieval;

/// <summary>
/// A first stage: the best candidates for each query of a batch, best first. Batches let a dense retriever embed its queries in
/// one call (an evaluation's thousands, or one search's one). Implementations: <see cref="DenseRetriever"/>,
/// <see cref="Bm25Retriever"/>, <see cref="HybridRetriever"/> (reciprocal rank fusion of two others) and
/// <see cref="CollectionRetriever"/> (a collection's, chosen per query by <see cref="SearchOptions.Retriever"/>); a sharded
/// retriever fans a batch out to one retriever per shard and merges their lists.
/// </summary>
public interface IRetriever
{
    /// <summary>Each query's candidates, in query order: at most <see cref="SearchOptions.Candidates"/>, none of
    /// <see cref="SearchOptions.Exclude"/>, all matching <see cref="SearchOptions.Filter"/>.</summary>
    Task<RetrievalBatch> RetrieveAsync(IReadOnlyList<RetrievalQuery> queries, CancellationToken cancellationToken = default);
}

/// <summary>One query of a batch: an id the caller knows it by (an evaluation's query id), its text and its options.</summary>
public sealed record RetrievalQuery(string Id, string Text, SearchOptions Options);

/// <summary>What a retriever found for a batch, with the time it spent embedding the queries, searching, and fusing lists.</summary>
public sealed record RetrievalBatch(IReadOnlyList<IReadOnlyList<Candidate>> Candidates, TimeSpan Embed, TimeSpan Search, TimeSpan Fuse)
{
    /// <summary>Of <see cref="Search"/>, a sharded retriever's fan-out: sending to the shards until the last answered (scatter)
    /// and merging their lists (gather).</summary>
    public TimeSpan Scatter { get; init; }

    /// <inheritdoc cref="Scatter"/>
    public TimeSpan Gather { get; init; }

    /// <summary>Parts of the corpus that could not be searched (a sharded collection's shards with no live replica): the
    /// candidates come from the rest. Empty when everything was searched.</summary>
    public IReadOnlyList<string> Unsearched { get; init; } = [];

    /// <summary>This batch's fan-out times and unsearched parts added to <paramref name="other"/>'s (a retriever combining two).</summary>
    public RetrievalBatch WithFanOutOf(RetrievalBatch other) => this with
    {
        Scatter = Scatter + other.Scatter, Gather = Gather + other.Gather,
        Unsearched = [.. Unsearched.Union(other.Unsearched, StringComparer.Ordinal).Order(StringComparer.Ordinal)],
    };
}

/// <summary>
/// A first-stage hit: the document, the score it is ranked by, and what each retriever that found it said (1-based ranks).
/// <see cref="Passage"/> is the text a reranker sees: the best chunk for dense hits, else the whole document.
/// </summary>
public sealed record Candidate(string DocumentId, double Score)
{
    public string Title { get; init; } = "";
    public string Passage { get; init; } = "";
    public IReadOnlyDictionary<string, string> Metadata { get; init; } = Document.NoMetadata;
    public float? DenseScore { get; init; }
    public int? DenseRank { get; init; }
    public float? Bm25Score { get; init; }
    public int? Bm25Rank { get; init; }
    public double? FusedScore { get; init; }

    /// <summary>A candidate for a stored document: its title, metadata and <paramref name="passage"/> (null: its full text).</summary>
    public static Candidate Of(Document document, double score, string? passage = null) => new(document.Id, score)
    {
        Title = document.Title, Passage = passage ?? document.FullText, Metadata = document.Metadata,
    };
}
