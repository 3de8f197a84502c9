using Funnel.Inference;

namespace Funnel.Evaluation;

/// <summary>How well a bi-encoder's cosine similarities follow gold similarity scores.</summary>
public sealed record StsResult(int Pairs, double Spearman, double Pearson);

/// <summary>
/// Semantic textual similarity as sentence-transformers' <c>EmbeddingSimilarityEvaluator</c> scores it: both sentences of
/// each pair embedded (with the model's default prompt, as its <c>encode</c>), the cosine of the two vectors, and Spearman's
/// ρ (the headline number) and Pearson's r of those cosines against the gold scores.
/// </summary>
public static class StsEvaluation
{
    public static StsResult Evaluate(SentenceEncoder encoder, IReadOnlyList<StsPair> pairs, CancellationToken ct = default)
    {
        double[] cosines = CosineSimilarities(encoder, pairs, ct);
        double[] gold = pairs.Select(p => p.Score).ToArray();
        return new StsResult(pairs.Count, Correlation.Spearman(cosines, gold), Correlation.Pearson(cosines, gold));
    }

    /// <summary>The cosine similarity of each pair's two embeddings, in pair order.</summary>
    public static double[] CosineSimilarities(SentenceEncoder encoder, IReadOnlyList<StsPair> pairs, CancellationToken ct = default)
    {
        // One call for all sentences: the encoder batches them by length.
        float[][] vectors = encoder.Encode([.. pairs.Select(p => p.Sentence1), .. pairs.Select(p => p.Sentence2)], ct);
        var cosines = new double[pairs.Count];
        for (int i = 0; i < pairs.Count; i++) cosines[i] = Cosine(vectors[i], vectors[pairs.Count + i]);
        return cosines;
    }

    private static double Cosine(float[] a, float[] b)
    {
        double dot = 0, aa = 0, bb = 0;
        for (int i = 0; i < a.Length; i++)
        {
            dot += (double)a[i] * b[i];
            aa += (double)a[i] * a[i];
            bb += (double)b[i] * b[i];
        }
        return aa == 0 || bb == 0 ? 0 : dot / Math.Sqrt(aa * bb);
    }
}
