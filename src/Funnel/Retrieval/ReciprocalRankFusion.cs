namespace Funnel.Retrieval;

/// <summary>
/// Reciprocal rank fusion (Cormack, Clarke &amp; Büttcher, SIGIR 2009): score(d) = Σ over rankings of 1 / (k + rank(d)),
/// rank starting at 1. It needs no score calibration between retrievers, which is why hybrid search uses it.
/// </summary>
public static class ReciprocalRankFusion
{
    public const int DefaultK = 60;

    /// <summary>
    /// Fuses rankings (best first, no duplicates within one) into one, best first. Equal scores keep the order in which the
    /// keys were first met going down the ranks in parallel (rank 1 of every list, then rank 2, ...), so ties favour the
    /// better single rank and then the earlier list.
    /// </summary>
    public static IReadOnlyList<(TKey Key, double Score)> Fuse<TKey>(IReadOnlyList<IReadOnlyList<TKey>> rankings, int k = DefaultK)
        where TKey : notnull
    {
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        var scores = new Dictionary<TKey, (double Score, int FirstSeen)>();
        int depth = rankings.Count == 0 ? 0 : rankings.Max(r => r.Count);
        for (int rank = 0; rank < depth; rank++)
            foreach (IReadOnlyList<TKey> ranking in rankings)
            {
                if (rank >= ranking.Count) continue;
                double contribution = 1.0 / (k + rank + 1);
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
