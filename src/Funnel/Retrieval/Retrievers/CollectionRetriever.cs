using Funnel.Inference;
using Microsoft.Extensions.AI;

namespace Funnel.Retrieval;

/// <summary>
/// A collection's three first stages, picked per query by <see cref="SearchOptions.Retriever"/>: dense, BM25, or both fused
/// (hybrid). Dense and hybrid need the bi-encoder the collection was indexed with.
/// </summary>
public sealed class CollectionRetriever : IRetriever
{
    private readonly IRetriever? _dense;
    private readonly IRetriever _bm25;
    private readonly IRetriever? _hybrid;

    /// <param name="biEncoder">Embeds queries for dense and hybrid search (null: BM25 only); see <see cref="DenseRetriever"/>.</param>
    public CollectionRetriever(Collection collection, IEmbeddingGenerator<string, Embedding<float>>? biEncoder)
        : this(new Bm25Retriever(collection ?? throw new ArgumentNullException(nameof(collection))), biEncoder is null ? null : new DenseRetriever(collection, biEncoder))
    {
        Collection = collection;
    }

    /// <summary>The three first stages over any BM25 and dense retriever (e.g. a sharded collection's); hybrid fuses the two.</summary>
    /// <param name="dense">Null: BM25 only.</param>
    public CollectionRetriever(IRetriever bm25, IRetriever? dense)
    {
        ArgumentNullException.ThrowIfNull(bm25);
        _bm25 = bm25;
        if (dense is null) return;
        _dense = dense;
        _hybrid = new HybridRetriever(_dense, _bm25);
    }

    /// <summary>The collection searched (null when built over other retrievers).</summary>
    public Collection? Collection { get; }

    public async Task<RetrievalBatch> RetrieveAsync(IReadOnlyList<RetrievalQuery> queries, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(queries);
        var candidates = new IReadOnlyList<Candidate>[queries.Count];
        TimeSpan embed = default, search = default, fuse = default;
        var fanOut = new RetrievalBatch([], default, default, default);
        foreach (var group in queries.Select((q, i) => (q, i)).GroupBy(x => x.q.Options.Retriever))
        {
            IRetriever retriever = group.Key switch
            {
                Retriever.Bm25 => _bm25,
                Retriever.Dense => _dense ?? throw NeedsBiEncoder(group.Key),
                _ => _hybrid ?? throw NeedsBiEncoder(group.Key),
            };
            var members = group.ToList();
            RetrievalBatch batch = await retriever.RetrieveAsync([.. members.Select(m => m.q)], cancellationToken).ConfigureAwait(false);
            for (int j = 0; j < members.Count; j++) candidates[members[j].i] = batch.Candidates[j];
            (embed, search, fuse) = (embed + batch.Embed, search + batch.Search, fuse + batch.Fuse);
            fanOut = fanOut.WithFanOutOf(batch);
        }
        return new RetrievalBatch(candidates, embed, search, fuse).WithFanOutOf(fanOut);
    }

    private static InvalidOperationException NeedsBiEncoder(Retriever kind) =>
        new($"{kind.ToString().ToLowerInvariant()} retrieval needs the collection's bi-encoder; this pipeline has none (use bm25, or give a bi-encoder)");
}
