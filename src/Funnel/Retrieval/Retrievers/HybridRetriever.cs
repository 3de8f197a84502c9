using System.Diagnostics;

namespace Funnel.Retrieval;

/// <summary>
/// Two retrievers fused by reciprocal rank (k = <see cref="SearchOptions.RrfK"/>): each fetches N, the fused list keeps N. A
/// document both found carries both retrievers' scores and ranks, and the dense one's passage (its best chunk).
/// </summary>
public sealed class HybridRetriever(IRetriever dense, IRetriever lexical) : IRetriever
{
    public async Task<RetrievalBatch> RetrieveAsync(IReadOnlyList<RetrievalQuery> queries, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(queries);
        // BM25 searches while the queries are embedded.
        Task<RetrievalBatch> lexicalTask = Task.Run(() => lexical.RetrieveAsync(queries, cancellationToken), cancellationToken);
        RetrievalBatch first = await dense.RetrieveAsync(queries, cancellationToken).ConfigureAwait(false);
        RetrievalBatch second = await lexicalTask.ConfigureAwait(false);

        long start = Stopwatch.GetTimestamp();
        var fused = new IReadOnlyList<Candidate>[queries.Count];
        for (int q = 0; q < queries.Count; q++)
        {
            IReadOnlyList<Candidate> a = first.Candidates[q], b = second.Candidates[q];
            var byIdA = a.ToDictionary(c => c.DocumentId, StringComparer.Ordinal);
            var byIdB = b.ToDictionary(c => c.DocumentId, StringComparer.Ordinal);
            fused[q] = ReciprocalRankFusion.Fuse<string>([a.Select(c => c.DocumentId).ToList(), b.Select(c => c.DocumentId).ToList()], queries[q].Options.RrfK)
                .Take(queries[q].Options.Candidates)
                .Select(f =>
                {
                    byIdA.TryGetValue(f.Key, out Candidate? x);
                    byIdB.TryGetValue(f.Key, out Candidate? y);
                    return (x ?? y)! with
                    {
                        Score = f.Score, FusedScore = f.Score,
                        DenseScore = x?.DenseScore ?? y?.DenseScore, DenseRank = x?.DenseRank ?? y?.DenseRank,
                        Bm25Score = x?.Bm25Score ?? y?.Bm25Score, Bm25Rank = x?.Bm25Rank ?? y?.Bm25Rank,
                    };
                })
                .ToList();
        }
        return new RetrievalBatch(fused, first.Embed + second.Embed, first.Search + second.Search, first.Fuse + second.Fuse + Stopwatch.GetElapsedTime(start))
            .WithFanOutOf(first).WithFanOutOf(second);
    }
}
