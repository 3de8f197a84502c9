using System.Diagnostics;
using Funnel.Inference;

namespace Funnel.Retrieval;

/// <summary>The first stage: nearest chunks by bi-encoder vector, BM25 over title and text, or both fused by reciprocal rank.</summary>
public enum Retriever { Dense, Bm25, Hybrid }

public sealed record SearchOptions
{
    public Retriever Retriever { get; init; } = Retriever.Hybrid;

    /// <summary>N: candidates the first stage passes on (per retriever, and after fusion).</summary>
    public int Candidates { get; init; } = 100;

    /// <summary>M: results returned.</summary>
    public int Results { get; init; } = 10;

    /// <summary>Rerank the candidates with the cross-encoder (when the pipeline has one).</summary>
    public bool Rerank { get; init; } = true;

    /// <summary>The k of reciprocal rank fusion.</summary>
    public int RrfK { get; init; } = ReciprocalRankFusion.DefaultK;

    public MetadataFilter? Filter { get; init; }

    /// <summary>HNSW candidate list size for this search (null: the collection's; raised to the chunks searched).
    /// Larger finds more of the true nearest chunks at a higher cost.</summary>
    public int? EfSearch { get; init; }

    /// <summary>
    /// Documents never returned, e.g. the query's own document when a corpus holds its queries (BEIR's rule). Each retriever
    /// fetches as many more candidates, so N remain after they are dropped.
    /// </summary>
    public IReadOnlySet<string>? Exclude { get; init; }

    public void Validate()
    {
        if (EfSearch is < 1) throw new ArgumentOutOfRangeException(nameof(EfSearch), EfSearch, "efSearch must be at least 1");
        if (Candidates < 1) throw new ArgumentOutOfRangeException(nameof(Candidates), Candidates, "the number of candidates (N) must be at least 1");
        if (Results < 1) throw new ArgumentOutOfRangeException(nameof(Results), Results, "the number of results (M) must be at least 1");
        if (RrfK < 0) throw new ArgumentOutOfRangeException(nameof(RrfK), RrfK, "the RRF k must be ≥ 0");
        if (!Enum.IsDefined(Retriever)) throw new ArgumentOutOfRangeException(nameof(Retriever), Retriever, "unknown retriever");
    }
}

/// <summary>
/// One result. First-stage scores and 1-based ranks are set for the retrievers that found the document; <see cref="FusedScore"/>
/// for hybrid; <see cref="RerankScore"/> when reranked. <see cref="Passage"/> is the text the cross-encoder saw (the best
/// chunk for dense hits, else the whole document).
/// </summary>
public sealed record SearchResult(
    int Rank, string DocumentId, string Title, string Passage, IReadOnlyDictionary<string, string> Metadata,
    float? DenseScore, int? DenseRank, float? Bm25Score, int? Bm25Rank, double? FusedScore, float? RerankScore)
{
    /// <summary>The score the results are ordered by: rerank, else fused, else the single retriever's.</summary>
    public double Score => RerankScore ?? FusedScore ?? DenseScore ?? Bm25Score ?? 0;
}

/// <summary>Wall time per stage: query embedding, first-stage retrieval, fusion and collapse, cross-encoder reranking.</summary>
public sealed record StageTimings(TimeSpan Embed, TimeSpan Retrieve, TimeSpan Fuse, TimeSpan Rerank)
{
    public TimeSpan Total => Embed + Retrieve + Fuse + Rerank;
}

public sealed record SearchResponse(string Query, IReadOnlyList<SearchResult> Results, StageTimings Timings);

/// <summary>
/// query → first stage (dense | bm25 | hybrid RRF) → top N → cross-encoder rerank → top M, over one collection. Queries are
/// embedded as queries (<see cref="SentenceEncoder.EncodeQueries"/>: after the model's query prompt, if it has one).
/// Chunk hits collapse to documents (best chunk). Thread-safe: any number of concurrent searches.
/// </summary>
public sealed class SearchPipeline
{
    private readonly Collection _collection;
    private readonly SentenceEncoder? _biEncoder;
    private readonly CrossEncoder? _crossEncoder;

    /// <param name="biEncoder">Needed for dense and hybrid search; must be the model the collection was indexed with.</param>
    /// <param name="crossEncoder">The reranker; without one, results keep first-stage order.</param>
    public SearchPipeline(Collection collection, SentenceEncoder? biEncoder, CrossEncoder? crossEncoder = null)
    {
        if (biEncoder is not null) collection.EnsureBiEncoder(biEncoder.Fingerprint);
        _collection = collection;
        _biEncoder = biEncoder;
        _crossEncoder = crossEncoder;
    }

    public Collection Collection => _collection;

    public Task<SearchResponse> SearchAsync(string query, SearchOptions? options = null, CancellationToken ct = default) =>
        Task.Run(() => Search(query, options, ct), ct);

    public SearchResponse Search(string query, SearchOptions? options = null, CancellationToken ct = default)
    {
        options = Checked(options);
        if (options.Retriever == Retriever.Bm25) return Run(query, null, options, TimeSpan.Zero, ct);
        long start = Stopwatch.GetTimestamp();
        float[] vector = _biEncoder!.EncodeQueries([query], ct)[0];
        return Run(query, vector, options, Stopwatch.GetElapsedTime(start), ct);
    }

    /// <summary>
    /// Searches with a query vector the caller already computed with the collection's bi-encoder, as
    /// <see cref="SentenceEncoder.EncodeQueries"/> does (after its query prompt), for example through a service's dynamic
    /// batcher, so concurrent searches share encoder batches. <paramref name="queryVector"/> may be
    /// null only for BM25; <paramref name="embedTime"/> is reported as the embed stage.
    /// </summary>
    public SearchResponse Search(string query, float[]? queryVector, TimeSpan embedTime, SearchOptions? options = null, CancellationToken ct = default)
    {
        options ??= new SearchOptions();
        options.Validate();
        if (options.Retriever != Retriever.Bm25 && queryVector is null)
            throw new ArgumentNullException(nameof(queryVector), $"{options.Retriever.ToString().ToLowerInvariant()} retrieval needs the query vector");
        return Run(query, options.Retriever == Retriever.Bm25 ? null : queryVector, options, embedTime, ct);
    }

    /// <summary>
    /// Searches many queries (e.g. an evaluation's), embedding them in batches first. Yields each query's response in input
    /// order as soon as it is ready.
    /// </summary>
    public IAsyncEnumerable<(string QueryId, SearchResponse Response)> SearchManyAsync(IReadOnlyList<(string Id, string Text)> queries,
        SearchOptions? options = null, CancellationToken ct = default)
    {
        options = Checked(options);
        return SearchManyAsync(queries.Select(q => (q.Id, q.Text, options)).ToList(), ct);
    }

    /// <summary>As <see cref="SearchManyAsync(IReadOnlyList{ValueTuple{string, string}}, SearchOptions?, CancellationToken)"/>, each query with its own options
    /// (e.g. an evaluation excluding each query's own document).</summary>
    public async IAsyncEnumerable<(string QueryId, SearchResponse Response)> SearchManyAsync(IReadOnlyList<(string Id, string Text, SearchOptions Options)> queries,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct = default)
    {
        foreach (var query in queries) Checked(query.Options);
        const int EmbedBatch = 256;
        for (int offset = 0; offset < queries.Count; offset += EmbedBatch)
        {
            var slice = queries.Skip(offset).Take(EmbedBatch).ToList();
            long start = Stopwatch.GetTimestamp();
            bool dense = slice.Any(q => q.Options.Retriever != Retriever.Bm25);
            float[][]? vectors = dense ? await Task.Run(() => _biEncoder!.EncodeQueries(slice.Select(q => q.Text).ToList(), ct), ct) : null;
            TimeSpan embedEach = Stopwatch.GetElapsedTime(start) / Math.Max(1, slice.Count);
            for (int i = 0; i < slice.Count; i++)
            {
                var (id, text, options) = slice[i];
                float[]? vector = options.Retriever == Retriever.Bm25 ? null : vectors![i];
                yield return (id, await Task.Run(() => Run(text, vector, options, embedEach, ct), ct));
            }
        }
    }

    private SearchOptions Checked(SearchOptions? options)
    {
        options ??= new SearchOptions();
        options.Validate();
        if (options.Retriever != Retriever.Bm25 && _biEncoder is null)
            throw new InvalidOperationException($"{options.Retriever.ToString().ToLowerInvariant()} retrieval needs the collection's bi-encoder; this pipeline has none (use bm25, or give a bi-encoder)");
        return options;
    }

    private SearchResponse Run(string query, float[]? vector, SearchOptions options, TimeSpan embed, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        long start = Stopwatch.GetTimestamp();
        IReadOnlySet<string> exclude = options.Exclude ?? System.Collections.Frozen.FrozenSet<string>.Empty;
        int fetch = (int)Math.Min(int.MaxValue, (long)options.Candidates + exclude.Count);
        IReadOnlyList<DocumentHit> dense = vector is null ? [] : Without(exclude, _collection.SearchDense(vector, fetch, options.Filter, options.EfSearch ?? 0), options.Candidates);
        IReadOnlyList<DocumentHit> bm25 = options.Retriever == Retriever.Dense ? [] : Without(exclude, _collection.SearchBm25(query, fetch, options.Filter), options.Candidates);
        TimeSpan retrieve = Stopwatch.GetElapsedTime(start);

        start = Stopwatch.GetTimestamp();
        var denseById = dense.Select((h, i) => (h, i)).ToDictionary(x => x.h.DocumentId, x => (x.h, Rank: x.i + 1), StringComparer.Ordinal);
        var bm25ById = bm25.Select((h, i) => (h, i)).ToDictionary(x => x.h.DocumentId, x => (x.h, Rank: x.i + 1), StringComparer.Ordinal);
        IReadOnlyList<(string Id, double? Fused)> candidates = options.Retriever switch
        {
            Retriever.Dense => dense.Select(h => (h.DocumentId, (double?)null)).ToList(),
            Retriever.Bm25 => bm25.Select(h => (h.DocumentId, (double?)null)).ToList(),
            _ => ReciprocalRankFusion.Fuse<string>([dense.Select(h => h.DocumentId).ToList(), bm25.Select(h => h.DocumentId).ToList()], options.RrfK)
                .Take(options.Candidates).Select(f => (f.Key, (double?)f.Score)).ToList(),
        };
        var results = new List<SearchResult>(candidates.Count);
        foreach (var (id, fused) in candidates)
        {
            Document? document = _collection.Get(id);
            if (document is null) continue; // deleted between retrieval and now
            bool isDense = denseById.TryGetValue(id, out var d), isBm25 = bm25ById.TryGetValue(id, out var b);
            string passage = _collection.GetPassage(id, isDense ? d.h.ChunkIndex : -1) ?? document.FullText;
            results.Add(new SearchResult(0, id, document.Title, passage, document.Metadata,
                isDense ? d.h.Score : null, isDense ? d.Rank : null, isBm25 ? b.h.Score : null, isBm25 ? b.Rank : null, fused, null));
        }
        TimeSpan fuse = Stopwatch.GetElapsedTime(start);

        start = Stopwatch.GetTimestamp();
        if (options.Rerank && _crossEncoder is not null && results.Count > 0)
        {
            // One call for all pairs of the query: the cross-encoder batches them by length and truncates each to its window.
            float[] scores = _crossEncoder.Score(query, results.Select(r => r.Passage).ToList(), ct);
            results = results.Select((r, i) => (r, i)).OrderByDescending(x => scores[x.i]).ThenBy(x => x.i)
                .Select(x => x.r with { RerankScore = scores[x.i] }).ToList();
        }
        TimeSpan rerank = Stopwatch.GetElapsedTime(start);

        var top = results.Take(options.Results).Select((r, i) => r with { Rank = i + 1 }).ToList();
        return new SearchResponse(query, top, new StageTimings(embed, retrieve, fuse, rerank));
    }

    private static IReadOnlyList<DocumentHit> Without(IReadOnlySet<string> exclude, IReadOnlyList<DocumentHit> hits, int count) =>
        exclude.Count == 0 ? hits : hits.Where(h => !exclude.Contains(h.DocumentId)).Take(count).ToList();
}
