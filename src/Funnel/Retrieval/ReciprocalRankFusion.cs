namespace Funnel.Retrieval;

/// <summary>
/// Reciprocal rank fusion (Cormack, Clarke &amp; Büttcher, SIGIR 2009): score(d) = Σ over rankings of w / (k + rank(d)),
/// rank starting at 1, each ranking's weight w 1 unless given. It needs no score calibration between retrievers, which is why
/// hybrid search uses it, and why the pipeline blends a reranker's order with the first stage's by it.
/// </summary>
public static class ReciprocalRankFusion
{
    public const int DefaultK = 60;

    /// <summary>
    /// Fuses rankings (best first, no duplicates within one) into one, best first. Equal scores keep the order in which the
    /// keys were first met going down the ranks in parallel (rank 1 of every list, then rank 2, ...), so ties favour the
    /// better single rank and then the earlier list.
    /// </summary>
    /// <param name="weights">One finite weight ≥ 0 per ranking (null: all 1).</param>
    public static IReadOnlyList<(TKey Key, double Score)> Fuse<TKey>(IReadOnlyList<IReadOnlyList<TKey>> rankings, int k = DefaultK,
        IReadOnlyList<double>? weights = null)
        where TKey : notnull
    {
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        if (weights is not null)
        {
            if (weights.Count != rankings.Count)
                throw new ArgumentException($"{weights.Count} weights for {rankings.Count} rankings: give one per ranking", nameof(weights));
            if (weights.Any(w => !double.IsFinite(w) || w < 0))
                throw new ArgumentOutOfRangeException(nameof(weights), "each ranking's weight must be finite and ≥ 0");
        }
        var scores = new Dictionary<TKey, (double Score, int FirstSeen)>();
        int depth = rankings.Count == 0 ? 0 : rankings.Max(r => r.Count);
        for (int rank = 0; rank < depth; rank++)
            for (int r = 0; r < rankings.Count; r++)
            {
                IReadOnlyList<TKey> ranking = rankings[r];
                if (rank >= ranking.Count) continue;
                double contribution = (weights?[r] ?? 1.0) / (k + rank + 1);
                scores[ranking[rank]] = scores.TryGetValue(ranking[rank], out var s)
                    ? (s.Score + contribution, s.FirstSeen)
                    : (contribution, scores.Count);
            }
        return scores
            .OrderByDescending(kv => kv.Value.Score).ThenBy(kv => kv.Value.FirstSeen)
            .Select(kv => (kv.Key, kv.Value.Score))
            .ToList();
    }
}
