using System.Diagnostics;
using Funnel.Inference;
using Microsoft.Extensions.AI;

namespace Funnel.Retrieval;

/// <summary>
/// Nearest chunks by bi-encoder vector, collapsed to documents (best chunk). Queries are embedded in one call per batch as
/// queries (<see cref="EmbeddingRole.Query"/>: after the model's query prompt), through any
/// <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/>: a <see cref="SentenceEncoder"/>, the service's batcher, or middleware around either.
/// </summary>
public sealed class DenseRetriever : IRetriever
{
    /// <summary>The <paramref name="k"/> best documents for a query vector under a query's options.</summary>
    internal delegate IReadOnlyList<DocumentHit> VectorSearch(ReadOnlyMemory<float> vector, int k, SearchOptions options);

    /// <summary>A hit's document and the passage its chunk is (null when the document is gone).</summary>
    internal delegate Candidate? Resolve(DocumentHit hit);

    private readonly IEmbeddingGenerator<string, Embedding<float>> _queryEncoder;
    private readonly VectorSearch _search;
    private readonly Resolve _resolve;

    /// <param name="queryEncoder">Must make the collection's vectors: when it names its <see cref="ModelFingerprint"/>
    /// (through <c>GetService</c>, as <see cref="SentenceEncoder"/> does) a mismatch throws <see cref="BiEncoderMismatchException"/>.</param>
    public DenseRetriever(Collection collection, IEmbeddingGenerator<string, Embedding<float>> queryEncoder)
        : this(queryEncoder, (vector, k, o) => collection.SearchDense(vector.Span, k, o.Filter, o.EfSearch ?? 0), hit =>
            collection.Get(hit.DocumentId) is { } document ? Candidate.Of(document, hit.Score, collection.GetPassage(hit.DocumentId, hit.ChunkIndex)) : null)
    {
        ArgumentNullException.ThrowIfNull(collection);
        if (queryEncoder.GetService<ModelFingerprint>() is { } fingerprint) collection.EnsureBiEncoder(fingerprint);
    }

    internal DenseRetriever(IEmbeddingGenerator<string, Embedding<float>> queryEncoder, VectorSearch search, Resolve resolve)
    {
        ArgumentNullException.ThrowIfNull(queryEncoder);
        _queryEncoder = queryEncoder;
        _search = search;
        _resolve = resolve;
    }

    public async Task<RetrievalBatch> RetrieveAsync(IReadOnlyList<RetrievalQuery> queries, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(queries);
        if (queries.Count == 0) return new RetrievalBatch([], TimeSpan.Zero, TimeSpan.Zero, TimeSpan.Zero);
        long start = Stopwatch.GetTimestamp();
        // The batch's tightest timeout bounds its one embedding call.
        TimeSpan? timeout = queries.Select(q => q.Options.Timeout).Where(t => t is not null).DefaultIfEmpty(null).Min();
        var settings = new SentenceEmbeddingOptions { Role = EmbeddingRole.Query, Timeout = timeout }.ToGenerationOptions();
        GeneratedEmbeddings<Embedding<float>> vectors = await _queryEncoder.GenerateAsync(queries.Select(q => q.Text), settings, cancellationToken).ConfigureAwait(false);
        if (vectors.Count != queries.Count)
            throw new InvalidOperationException($"the query encoder returned {vectors.Count} embeddings for {queries.Count} queries");
        TimeSpan embed = Stopwatch.GetElapsedTime(start);

        start = Stopwatch.GetTimestamp();
        var candidates = new IReadOnlyList<Candidate>[queries.Count];
        // Searches only read the index: a batch's queries search in parallel.
        Parallel.For(0, queries.Count, new ParallelOptions { CancellationToken = cancellationToken }, q =>
        {
            SearchOptions options = queries[q].Options;
            IReadOnlyList<DocumentHit> hits = Exclusion.Search(options, fetch => _search(vectors[q].Vector, fetch, options));
            var found = new List<Candidate>(hits.Count);
            foreach (DocumentHit hit in hits)
                if (_resolve(hit) is { } candidate) // else deleted since the search
                    found.Add(candidate with { DenseScore = hit.Score, DenseRank = found.Count + 1 });
            candidates[q] = found;
        });
        return new RetrievalBatch(candidates, embed, Stopwatch.GetElapsedTime(start), TimeSpan.Zero);
    }
}

/// <summary>BEIR's rule for corpora that hold their queries: a retriever fetches as many more as it must drop, so N others remain.</summary>
internal static class Exclusion
{
    public static IReadOnlyList<DocumentHit> Search(SearchOptions options, Func<int, IReadOnlyList<DocumentHit>> search)
    {
        IReadOnlySet<string>? exclude = options.Exclude;
        if (exclude is not { Count: > 0 }) return search(options.Candidates);
        int fetch = (int)Math.Min(int.MaxValue, (long)options.Candidates + exclude.Count);
        return search(fetch).Where(h => !exclude.Contains(h.DocumentId)).Take(options.Candidates).ToList();
    }
}
