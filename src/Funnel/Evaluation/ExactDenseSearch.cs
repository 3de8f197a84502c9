using Funnel.Index;
using Funnel.Inference;
using Funnel.Retrieval;
using Microsoft.Extensions.AI;

namespace Funnel.Evaluation;

/// <summary>
/// Dense retrieval as BEIR's <c>DenseRetrievalExactSearch</c> does it, the protocol behind published BEIR numbers of
/// bi-encoders: one vector per document (<see cref="Document.FullText"/>, title + " " + text, embedded as a document and
/// truncated to the model's window, so the rest of a long document is never seen) and exact cosine search over all of them.
/// A <see cref="Collection"/> differs on purpose: it chunks long documents (every part is searchable) and searches HNSW.
/// Memory: one float vector per document.
/// </summary>
public sealed class ExactDenseSearch : IDisposable
{
    private readonly FlatIndex _index;
    private readonly List<string> _ids = [];
    private readonly Dictionary<string, int> _ordinals = new(StringComparer.Ordinal);

    private ExactDenseSearch(int dimension) => _index = new FlatIndex(dimension, DistanceMetric.Cosine);

    /// <summary>Documents held (a later document with an id already seen replaces it, as BEIR's corpus dict does).</summary>
    public int Count => _ids.Count;

    /// <summary>Embeds <paramref name="corpus"/> with <paramref name="encoder"/> (<see cref="SentenceEncoder.EncodeDocuments"/>), <paramref name="batchSize"/>
    /// documents per encoder call. Progress reports documents embedded.</summary>
    public static async Task<ExactDenseSearch> BuildAsync(SentenceEncoder encoder, IAsyncEnumerable<Document> corpus, int batchSize = 1024,
        IProgress<int>? progress = null, CancellationToken ct = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        var search = new ExactDenseSearch(encoder.Dimension);
        try
        {
            var batch = new List<Document>(batchSize);
            int embedded = 0;
            void Flush()
            {
                float[][] vectors = encoder.EncodeDocuments(batch.Select(d => d.FullText).ToList(), ct);
                for (int i = 0; i < batch.Count; i++) search.Add(batch[i].Id, vectors[i]);
                embedded += batch.Count;
                batch.Clear();
                progress?.Report(embedded);
            }
            await foreach (Document document in corpus.WithCancellation(ct).ConfigureAwait(false))
            {
                batch.Add(document);
                if (batch.Count == batchSize) Flush();
            }
            if (batch.Count > 0) Flush();
            return search;
        }
        catch
        {
            search.Dispose();
            throw;
        }
    }

    private void Add(string id, float[] vector)
    {
        if (!_ordinals.TryGetValue(id, out int ordinal))
        {
            _ordinals.Add(id, ordinal = _ids.Count);
            _ids.Add(id);
        }
        _index.Upsert(ordinal, vector);
    }

    /// <summary>
    /// The <paramref name="k"/> documents nearest <paramref name="query"/> (a query vector of the same encoder), best first, by
    /// cosine similarity. <paramref name="excludeId"/> (BEIR: the query's own id) is left out, and the search fetches one more
    /// so that <paramref name="k"/> others remain.
    /// </summary>
    public IReadOnlyList<ScoredDocument> Search(ReadOnlySpan<float> query, int k, string? excludeId = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(k);
        return _index.Search(query, excludeId is null ? k : k + 1)
            .Select(hit => new ScoredDocument(_ids[(int)hit.Id], hit.Score))
            .Where(d => d.DocId != excludeId)
            .Take(k)
            .ToList();
    }

    /// <summary>
    /// This search as a pipeline's first stage: queries embedded by <paramref name="queryEncoder"/> (the corpus's encoder) as
    /// queries; <paramref name="documents"/> gives candidates their text (null: ids and scores only). No metadata filters.
    /// </summary>
    public IRetriever AsRetriever(IEmbeddingGenerator<string, Embedding<float>> queryEncoder, Func<string, Document?>? documents = null) =>
        new DenseRetriever(queryEncoder, (vector, k, options) =>
        {
            if (options.Filter is not null) throw new NotSupportedException("exact dense search has no metadata; search a collection to filter");
            return _index.Search(vector.Span, k).Select(hit => new DocumentHit(_ids[(int)hit.Id], hit.Score, -1)).ToList();
        }, hit => documents?.Invoke(hit.DocumentId) is { } document ? Candidate.Of(document, hit.Score) : new Candidate(hit.DocumentId, hit.Score));

    public void Dispose() => _index.Dispose();
}
