using System.Diagnostics;
using Funnel.Inference;

namespace Funnel.Evaluation;

/// <summary>Throughput of a rerank pass.</summary>
public readonly record struct RerankStatistics(int Queries, long Pairs, TimeSpan Elapsed)
{
    public double PairsPerSecond => Elapsed.TotalSeconds > 0 ? Pairs / Elapsed.TotalSeconds : 0;
    public double QueriesPerSecond => Elapsed.TotalSeconds > 0 ? Queries / Elapsed.TotalSeconds : 0;
}

/// <summary>Second stage of an evaluation: a cross-encoder rescoring each query's first-stage candidates.</summary>
public static class CrossEncoderReranking
{
    /// <summary>
    /// Scores the first <paramref name="candidates"/> candidates of every query with <paramref name="encoder"/> and
    /// keeps the <paramref name="keep"/> best by cross-encoder score in the returned run. Progress reports the number
    /// of queries done.
    /// </summary>
    public static (Run Run, RerankStatistics Statistics) Rerank(CrossEncoder encoder, IReadOnlyList<RerankQuery> queries, int candidates, int keep,
        string tag = "rerank", IProgress<int>? progress = null, CancellationToken ct = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(candidates);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(keep);
        var run = new Run(tag);
        long pairs = 0;
        var clock = Stopwatch.StartNew();
        for (int q = 0; q < queries.Count; q++)
        {
            ct.ThrowIfCancellationRequested();
            var query = queries[q];
            var pool = query.Candidates.Take(candidates).ToList();
            float[] scores = encoder.Score(query.Text, pool.Select(c => c.Text).ToList(), ct);
            pairs += pool.Count;
            var best = pool.Select((c, i) => new ScoredDocument(c.DocId, scores[i])).ToArray();
            Array.Sort(best, Run.TrecEvalOrder);
            run.Add(query.Id, best.Take(keep));
            progress?.Report(q + 1);
        }
        return (run, new RerankStatistics(queries.Count, pairs, clock.Elapsed));
    }
}
