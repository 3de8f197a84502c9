using System.Diagnostics;
using Funnel.Retrieval.Lexical;

namespace Funnel.Retrieval;

/// <summary>BM25 over title and text: a collection's index, or an index built in memory (an evaluation's corpus).</summary>
public sealed class Bm25Retriever : IRetriever
{
    private readonly Func<string, int, MetadataFilter?, IReadOnlyList<DocumentHit>> _search;
    private readonly Func<string, Document?> _document;

    public Bm25Retriever(Collection collection)
    {
        ArgumentNullException.ThrowIfNull(collection);
        _search = collection.SearchBm25;
        _document = collection.Get;
    }

    /// <param name="documents">The documents by id, for titles, passages and metadata filters; without it candidates carry
    /// only ids and scores (enough for an evaluation that does not rerank) and filters are refused.</param>
    public Bm25Retriever(Bm25Index index, Func<string, Document?>? documents = null)
    {
        ArgumentNullException.ThrowIfNull(index);
        _document = documents ?? (_ => null);
        _search = (query, k, filter) =>
        {
            if (filter is not null && documents is null)
                throw new NotSupportedException("a metadata filter needs the documents; this BM25 retriever was given only an index");
            Func<string, bool>? matches = filter is null ? null : id => documents!(id) is { } d && filter.Matches(d.Metadata);
            return index.Search(query, k, matches).Select(h => new DocumentHit(h.DocId, h.Score, -1)).ToList();
        };
    }

    public Task<RetrievalBatch> RetrieveAsync(IReadOnlyList<RetrievalQuery> queries, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(queries);
        long start = Stopwatch.GetTimestamp();
        var candidates = new IReadOnlyList<Candidate>[queries.Count];
        // Searches only read the index: a batch's queries search in parallel.
        Parallel.For(0, queries.Count, new ParallelOptions { CancellationToken = cancellationToken }, q =>
        {
            RetrievalQuery query = queries[q];
            IReadOnlyList<DocumentHit> hits = Exclusion.Search(query.Options, fetch => _search(query.Text, fetch, query.Options.Filter));
            var found = new List<Candidate>(hits.Count);
            foreach (DocumentHit hit in hits)
            {
                Candidate candidate = _document(hit.DocumentId) is { } document ? Candidate.Of(document, hit.Score) : new Candidate(hit.DocumentId, hit.Score);
                found.Add(candidate with { Bm25Score = hit.Score, Bm25Rank = found.Count + 1 });
            }
            candidates[q] = found;
        });
        return Task.FromResult(new RetrievalBatch(candidates, TimeSpan.Zero, Stopwatch.GetElapsedTime(start), TimeSpan.Zero));
    }
}
