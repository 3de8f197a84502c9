using System.Diagnostics;
using Funnel.Inference;
using Microsoft.Extensions.AI;

namespace Funnel.Retrieval;

/// <summary>A collection's first stage (<see cref="CollectionRetriever"/>): nearest chunks by bi-encoder vector, BM25 over title and
/// text, or both fused by reciprocal rank.</summary>
public enum Retriever { Dense, Bm25, Hybrid }

public sealed record SearchOptions
{
    /// <summary>Which of a collection's first stages runs (<see cref="CollectionRetriever"/>); a pipeline built on another
    /// <see cref="IRetriever"/> runs that one.</summary>
    public Retriever Retriever { get; init; } = Retriever.Hybrid;

    /// <summary>N: candidates the first stage passes on (per retriever, and after fusion).</summary>
    public int Candidates { get; init; } = 100;

    /// <summary>M: results returned.</summary>
    public int Results { get; init; } = 10;

    /// <summary>Rerank the candidates (when the pipeline has a reranker).</summary>
    public bool Rerank { get; init; } = true;

    /// <summary>The k of reciprocal rank fusion (hybrid search, and the rerank blend of <see cref="RerankWeight"/>).</summary>
    public int RrfK { get; init; } = ReciprocalRankFusion.DefaultK;

    /// <summary>
    /// How much the reranker decides the order, in [0, 1]. 1 (the default): the reranker's order, as sentence-transformers'
    /// retrieve-and-rerank. Below 1, the reranker's ranking (weight w) and the first stage's (weight 1 − w) are fused by
    /// reciprocal rank (k = <see cref="RrfK"/>), as Elasticsearch's rescorer weighs its query against the rescore query, but
    /// on ranks, which need no calibration between a retriever's scores and a cross-encoder's. A reranker trained on little
    /// data can then add to a strong first stage instead of replacing it. Pick w on a dev split (<c>funnel eval --split dev</c>).
    /// </summary>
    public double RerankWeight { get; init; } = 1.0;

    public MetadataFilter? Filter { get; init; }

    /// <summary>HNSW candidate list size for this search (null: the collection's; raised to the chunks searched).
    /// Larger finds more of the true nearest chunks at a higher cost.</summary>
    public int? EfSearch { get; init; }

    /// <summary>
    /// Documents never returned, e.g. the query's own document when a corpus holds its queries (BEIR's rule). Each retriever
    /// fetches as many more candidates, so N remain after they are dropped.
    /// </summary>
    public IReadOnlySet<string>? Exclude { get; init; }

    /// <summary>How long the search's model calls may take (null: no limit): the query embedding and the rerank get what is left
    /// of it. A queued model that cannot finish in time throws <see cref="ModelUnavailableException"/>.</summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>When the rerank cannot be had (<see cref="ModelUnavailableException"/>: overloaded, or the
    /// <see cref="Timeout"/> would pass), answer with the first stage's order, saying so in <see cref="SearchResponse.RerankSkipped"/>.</summary>
    public bool RerankFallback { get; init; }

    public void Validate()
    {
        if (Timeout is { } timeout && timeout <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(Timeout), Timeout, "the timeout must be positive");
        if (EfSearch is < 1) throw new ArgumentOutOfRangeException(nameof(EfSearch), EfSearch, "efSearch must be at least 1");
        if (Candidates < 1) throw new ArgumentOutOfRangeException(nameof(Candidates), Candidates, "the number of candidates (N) must be at least 1");
        if (Results < 1) throw new ArgumentOutOfRangeException(nameof(Results), Results, "the number of results (M) must be at least 1");
        if (RrfK < 0) throw new ArgumentOutOfRangeException(nameof(RrfK), RrfK, "the RRF k must be ≥ 0");
        if (!(RerankWeight is >= 0 and <= 1)) throw new ArgumentOutOfRangeException(nameof(RerankWeight), RerankWeight, "the rerank weight must be between 0 and 1");
        if (!Enum.IsDefined(Retriever)) throw new ArgumentOutOfRangeException(nameof(Retriever), Retriever, "unknown retriever");
    }
}

/// <summary>
/// One result. First-stage scores and 1-based ranks are set for the retrievers that found the document; <see cref="FusedScore"/>
/// for hybrid; when reranked, <see cref="RerankScore"/> (after the model's activation, as sentence-transformers'
/// <c>CrossEncoder.predict</c> gives it: what results are ordered by) and <see cref="RerankLogit"/> (before it); with a
/// <see cref="SearchOptions.RerankWeight"/> below 1, <see cref="BlendScore"/> orders them instead.
/// <see cref="Passage"/> is the text the reranker saw (the best chunk for dense hits, else the whole document).
/// </summary>
public sealed record SearchResult(
    int Rank, string DocumentId, string Title, string Passage, IReadOnlyDictionary<string, string> Metadata,
    float? DenseScore, int? DenseRank, float? Bm25Score, int? Bm25Rank, double? FusedScore, float? RerankScore, float? RerankLogit = null)
{
    /// <summary>The score the results are ordered by: the rerank blend, else the rerank, else the first stage's.</summary>
    public double Score => BlendScore ?? RerankScore ?? FirstStageScore;

    /// <summary>The first stage's score: fused, else the single retriever's.</summary>
    public double FirstStageScore { get; init; }

    /// <summary>With <see cref="SearchOptions.RerankWeight"/> below 1: w / (k + rerank rank) + (1 − w) / (k + first-stage rank).</summary>
    public double? BlendScore { get; init; }

    internal static SearchResult Of(Candidate c, int rank, float? rerankScore = null, float? rerankLogit = null, double? blendScore = null) =>
        new(rank, c.DocumentId, c.Title, c.Passage, c.Metadata, c.DenseScore, c.DenseRank, c.Bm25Score, c.Bm25Rank, c.FusedScore, rerankScore, rerankLogit)
        {
            FirstStageScore = c.Score,
            BlendScore = blendScore,
        };
}

/// <summary>Wall time per stage: query embedding, first-stage retrieval, fusion and collapse, reranking.</summary>
public sealed record StageTimings(TimeSpan Embed, TimeSpan Retrieve, TimeSpan Fuse, TimeSpan Rerank)
{
    public TimeSpan Total => Embed + Retrieve + Fuse + Rerank;

    /// <summary>Of <see cref="Retrieve"/>, a sharded collection's fan-out to its shards until the last answered (zero for one collection).</summary>
    public TimeSpan Scatter { get; init; }

    /// <summary>Of <see cref="Retrieve"/>, merging the shards' lists into one (zero for one collection).</summary>
    public TimeSpan Gather { get; init; }
}

/// <summary>A search's results, its stage times, and how many first-stage candidates it had (and reranked, when it reranked).
/// <see cref="RerankSkipped"/> says why a rerank that was asked for fell back to first-stage order (<see cref="SearchOptions.RerankFallback"/>).</summary>
public sealed record SearchResponse(string Query, IReadOnlyList<SearchResult> Results, StageTimings Timings, int Candidates = 0)
{
    public string? RerankSkipped { get; init; }

    /// <summary>Shards of a sharded collection that had no live replica: the results are from the others (never silently partial).</summary>
    public IReadOnlyList<string> Unsearched { get; init; } = [];
}

/// <summary>
/// query → first stage (any <see cref="IRetriever"/>) → top N → rerank (any <see cref="IReranker"/>) → top M. The one pipeline
/// behind the library, <c>funnel search</c>, <c>funnel eval</c> and the service's collection search, so all of them rank the
/// same way: by the reranker's activation score in <see cref="ScoreOrder"/> (ties keep first-stage order), or by its blend
/// with the first stage (<see cref="SearchOptions.RerankWeight"/>), else in first-stage order. Thread-safe: any number of
/// concurrent searches.
/// </summary>
public sealed class SearchPipeline
{
    /// <summary>Queries a batch of <see cref="SearchManyAsync(IReadOnlyList{ValueTuple{string, string, SearchOptions}}, CancellationToken)"/>
    /// hands the retriever at once (a dense retriever embeds them in one call).</summary>
    private const int RetrievalBatchSize = 256;

    /// <param name="retriever">The first stage.</param>
    /// <param name="reranker">The second stage; without one, results keep first-stage order.</param>
    public SearchPipeline(IRetriever retriever, IReranker? reranker = null)
    {
        ArgumentNullException.ThrowIfNull(retriever);
        Retriever = retriever;
        Reranker = reranker;
    }

    /// <summary>A pipeline over one collection's dense, BM25 and hybrid first stages (<see cref="CollectionRetriever"/>).</summary>
    /// <param name="biEncoder">Needed for dense and hybrid search; must be the model the collection was indexed with.</param>
    public SearchPipeline(Collection collection, IEmbeddingGenerator<string, Embedding<float>>? biEncoder, IReranker? reranker = null)
        : this(new CollectionRetriever(collection, biEncoder), reranker)
    {
    }

    public IRetriever Retriever { get; }

    public IReranker? Reranker { get; }

    public async Task<SearchResponse> SearchAsync(string query, SearchOptions? options = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        options = Checked(options);
        (string, SearchResponse)? only = null;
        await foreach (var response in SearchManyAsync([("", query, options)], ct).ConfigureAwait(false)) only = response;
        return only!.Value.Item2;
    }

    /// <summary>As <see cref="SearchAsync"/>, blocking.</summary>
    public SearchResponse Search(string query, SearchOptions? options = null, CancellationToken ct = default) =>
        SearchAsync(query, options, ct).GetAwaiter().GetResult();

    /// <summary>
    /// Searches many queries (e.g. an evaluation's), retrieving them in batches (a dense retriever embeds each batch in one
    /// call). Yields each query's response in input order as soon as it is ready.
    /// </summary>
    public IAsyncEnumerable<(string QueryId, SearchResponse Response)> SearchManyAsync(IReadOnlyList<(string Id, string Text)> queries,
        SearchOptions? options = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(queries);
        options = Checked(options);
        return SearchManyAsync(queries.Select(q => (q.Id, q.Text, options)).ToList(), ct);
    }

    /// <summary>As <see cref="SearchManyAsync(IReadOnlyList{ValueTuple{string, string}}, SearchOptions?, CancellationToken)"/>, each query with its own options
    /// (e.g. an evaluation excluding each query's own document).</summary>
    public async IAsyncEnumerable<(string QueryId, SearchResponse Response)> SearchManyAsync(IReadOnlyList<(string Id, string Text, SearchOptions Options)> queries,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(queries);
        foreach (var query in queries)
        {
            ArgumentNullException.ThrowIfNull(query.Text, nameof(queries));
            Checked(query.Options);
        }
        for (int offset = 0; offset < queries.Count; offset += RetrievalBatchSize)
        {
            RetrievalQuery[] slice = [.. queries.Skip(offset).Take(RetrievalBatchSize).Select(q => new RetrievalQuery(q.Id, q.Text, q.Options))];
            long start = Stopwatch.GetTimestamp();
            RetrievalBatch batch = await Retriever.RetrieveAsync(slice, ct).ConfigureAwait(false);
            if (batch.Candidates.Count != slice.Length)
                throw new InvalidOperationException($"the retriever returned {batch.Candidates.Count} candidate lists for {slice.Length} queries");
            // A batch's stage times are shared out evenly between its queries.
            TimeSpan wall = Stopwatch.GetElapsedTime(start), search = wall - batch.Embed - batch.Fuse;
            var shared = (Embed: batch.Embed / slice.Length, Retrieve: (search > TimeSpan.Zero ? search : batch.Search) / slice.Length, Fuse: batch.Fuse / slice.Length,
                Scatter: batch.Scatter / slice.Length, Gather: batch.Gather / slice.Length);
            for (int i = 0; i < slice.Length; i++)
            {
                var (id, text, options) = (slice[i].Id, slice[i].Text, slice[i].Options);
                long rerankStart = Stopwatch.GetTimestamp();
                IReadOnlyList<Candidate> candidates = batch.Candidates[i];
                if (candidates.Count > options.Candidates) candidates = [.. candidates.Take(options.Candidates)];
                var (results, skipped) = await RankAsync(text, candidates, options, options.Timeout - Stopwatch.GetElapsedTime(start), ct).ConfigureAwait(false);
                var timings = new StageTimings(shared.Embed, shared.Retrieve, shared.Fuse, Stopwatch.GetElapsedTime(rerankStart)) { Scatter = shared.Scatter, Gather = shared.Gather };
                yield return (id, new SearchResponse(text, results, timings, candidates.Count) { RerankSkipped = skipped, Unsearched = batch.Unsearched });
            }
        }
    }

    private static SearchOptions Checked(SearchOptions? options)
    {
        options ??= new SearchOptions();
        options.Validate();
        return options;
    }

    /// <summary>Reranks the candidates when asked (and a reranker is there) within <paramref name="left"/> of the search's
    /// timeout, then keeps the top M; with <see cref="SearchOptions.RerankFallback"/>, a rerank that cannot be had gives the
    /// first stage's order and the reason.</summary>
    private async Task<(IReadOnlyList<SearchResult> Results, string? Skipped)> RankAsync(string query, IReadOnlyList<Candidate> candidates, SearchOptions options,
        TimeSpan? left, CancellationToken ct)
    {
        int kept = Math.Min(options.Results, candidates.Count);
        var results = new SearchResult[kept];
        if (!options.Rerank || Reranker is null || candidates.Count == 0) return (FirstStage(), null);
        RerankScores scores;
        try
        {
            if (left <= TimeSpan.Zero)
                throw new ModelUnavailableException($"the first stage used the search's {options.Timeout!.Value.TotalMilliseconds:F0} ms; nothing is left for the rerank",
                    ModelUnavailableReason.DeadlineUnmet, TimeSpan.FromSeconds(1));
            // One call for all pairs of the query: the reranker batches them by length and truncates each to its window.
            scores = await Reranker.ScoreAsync(query, [.. candidates.Select(c => c.Passage)], new RerankOptions { Timeout = left }, ct).ConfigureAwait(false);
        }
        catch (ModelUnavailableException unavailable) when (options.RerankFallback)
        {
            return (FirstStage(), unavailable.Message);
        }
        if (scores.Scores.Length != candidates.Count || scores.Logits.Length != candidates.Count)
            throw new InvalidOperationException($"the reranker returned {scores.Scores.Length} scores for {candidates.Count} candidates");
        int[] order = ScoreOrder.BestFirst(scores.Scores);
        // Candidates arrive in first-stage order, so index i is first-stage rank i + 1.
        IReadOnlyList<(int Key, double Score)>? blended = options.RerankWeight < 1
            ? ReciprocalRankFusion.Fuse<int>([order, [.. Enumerable.Range(0, candidates.Count)]], options.RrfK,
                [options.RerankWeight, 1 - options.RerankWeight])
            : null;
        for (int i = 0; i < kept; i++)
        {
            int c = blended?[i].Key ?? order[i];
            results[i] = SearchResult.Of(candidates[c], i + 1, scores.Scores[c], scores.Logits[c], blended?[i].Score);
        }
        return (results, null);

        SearchResult[] FirstStage()
        {
            for (int i = 0; i < kept; i++) results[i] = SearchResult.Of(candidates[i], i + 1);
            return results;
        }
    }
}
