namespace Funnel.Inference;

/// <summary>Settings of one <see cref="IReranker.ScoreAsync"/> call.</summary>
public sealed record RerankOptions
{
    /// <summary>Cut pairs longer than the window (the default), or refuse them with <see cref="InputTooLongException"/>.</summary>
    public bool Truncate { get; init; } = true;

    /// <summary>How long the call may take: a queued reranker (the service's batcher) refuses with
    /// <see cref="ModelUnavailableException"/> what it cannot finish in time; the in-process cross-encoder starts at once.</summary>
    public TimeSpan? Timeout { get; init; }
}

/// <summary>
/// One score per document, in document order: <see cref="Scores"/> after the model's activation (what results are ordered by:
/// sentence-transformers' <c>CrossEncoder.predict</c>), <see cref="Logits"/> before it; <see cref="Tokens"/> the pairs took.
/// </summary>
public sealed record RerankScores(float[] Scores, float[] Logits, long Tokens);

/// <summary>A second stage: scores documents against a query. <see cref="CrossEncoder"/> is one; the service's batcher decorates it.</summary>
public interface IReranker
{
    Task<RerankScores> ScoreAsync(string query, IReadOnlyList<string> documents, RerankOptions? options = null, CancellationToken cancellationToken = default);
}

/// <summary>The one order of scored items everywhere (pipeline, CLI, service): best score first, ties in input order, NaN last.</summary>
public static class ScoreOrder
{
    /// <summary>Indices of <paramref name="scores"/>, best first.</summary>
    public static int[] BestFirst(IReadOnlyList<float> scores)
    {
        var order = new int[scores.Count];
        for (int i = 0; i < order.Length; i++) order[i] = i;
        Array.Sort(order, (a, b) =>
        {
            float x = scores[a], y = scores[b];
            if (float.IsNaN(x) || float.IsNaN(y))
            {
                int nan = float.IsNaN(x).CompareTo(float.IsNaN(y));
                if (nan != 0) return nan;
            }
            else if (x != y) return y.CompareTo(x);
            return a.CompareTo(b);
        });
        return order;
    }
}
