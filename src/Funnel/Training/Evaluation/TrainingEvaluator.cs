using System.Numerics.Tensors;
using Funnel.Evaluation;
using Funnel.Index;
using Funnel.Inference;
using Funnel.Training.Data;

namespace Funnel.Training.Evaluation;

/// <summary>
/// A quality measure taken during training (every N steps and at each epoch's end) on the model as it is, without
/// dropout; higher is better, and the best-scoring step is the model the run keeps.
/// </summary>
public abstract class TrainingEvaluator
{
    /// <summary>What is measured, e.g. <c>nDCG@10 dense, nfcorpus (dev)</c>.</summary>
    public abstract string Metric { get; }

    internal abstract double Evaluate(TrainingModel model, int threads, CancellationToken ct);

    /// <summary>Measures a trained model folder (e.g. a run's output, on its test split), without dropout.</summary>
    public double Evaluate(string modelDir, ModelKind kind, int threads = 0, CancellationToken ct = default) =>
        Evaluate(TrainingModel.Load(modelDir, kind, dropout: false, maxLength: null, seed: 0), threads > 0 ? threads : Environment.ProcessorCount, ct);

    /// <summary>Bi-encoder: exact dense retrieval over the split's whole corpus (cosine), nDCG@10 over its judged queries
    /// (the first <paramref name="maxQueries"/> of them when given).</summary>
    public static TrainingEvaluator DenseRetrieval(RetrievalSplit split, int? maxQueries = null) => new DenseRetrievalEvaluator(split, maxQueries);

    /// <summary>Cross-encoder: reranking each judged query's first-stage <paramref name="candidates"/> (document ids,
    /// best first), nDCG@10.</summary>
    public static TrainingEvaluator Reranking(RetrievalSplit split, IReadOnlyDictionary<string, IReadOnlyList<string>> candidates, string firstStage) =>
        new RerankingEvaluator(split, candidates, firstStage);

    /// <summary>Spearman's rank correlation (<see cref="Correlation.Spearman"/>) between the model's similarity (a bi-encoder's
    /// cosine, a cross-encoder's logit) and the rows' scores: the STS benchmark measure.</summary>
    public static TrainingEvaluator Similarity(TrainingData pairs) => new SimilarityEvaluator(pairs);

    protected static double MeanNdcg10(Qrels qrels, Run run) => Metrics.Evaluate(qrels, run, [Measure.NdcgAt(10)]).Mean(Measure.NdcgAt(10));
}

internal sealed class DenseRetrievalEvaluator(RetrievalSplit split, int? maxQueries) : TrainingEvaluator
{
    private readonly List<string> _queries = split.Qrels.QueryIds.Take(maxQueries ?? int.MaxValue).ToList();

    public override string Metric => $"nDCG@10 dense, {split.Name}";

    internal override double Evaluate(TrainingModel model, int threads, CancellationToken ct)
    {
        float[] docs = model.Represent(split.Corpus.Select(d => model.EncodeText(d.FullText)).ToList(), threads, ct);
        float[] queries = model.Represent(_queries.Select(q => model.EncodeText(split.Queries[q])).ToList(), threads, ct);
        int dim = model.Head.Dimension;
        using var index = new FlatIndex(dim, DistanceMetric.Cosine, maxThreads: threads);
        index.AddBatch(split.Corpus.Select((_, i) => new VectorRecord(i, docs.AsSpan(i * dim, dim).ToArray())).ToList(), threads, ct: ct);
        var run = new Run("dense");
        IReadOnlyList<VectorHit>[] hits = index.SearchBatch(_queries.Select((_, i) => queries.AsSpan(i * dim, dim).ToArray()).ToList(), 10, maxThreads: threads, ct: ct);
        for (int q = 0; q < _queries.Count; q++) run.Add(_queries[q], hits[q].Select(h => new ScoredDocument(split.Corpus[(int)h.Id].Id, h.Score)));
        return MeanNdcg10(split.Qrels.Restrict(_queries), run);
    }
}

internal sealed class RerankingEvaluator(RetrievalSplit split, IReadOnlyDictionary<string, IReadOnlyList<string>> candidates, string firstStage) : TrainingEvaluator
{
    private readonly Dictionary<string, string> _texts = split.Corpus.ToDictionary(d => d.Id, d => d.FullText, StringComparer.Ordinal);

    public override string Metric => $"nDCG@10 reranking {firstStage}, {split.Name}";

    internal override double Evaluate(TrainingModel model, int threads, CancellationToken ct)
    {
        var queries = split.Qrels.QueryIds.Where(candidates.ContainsKey).ToList();
        var pairs = queries.SelectMany(q => candidates[q].Select(d => (Query: q, Doc: d))).ToList();
        float[] logits = model.Represent(pairs.Select(p => model.EncodePair(split.Queries[p.Query], _texts[p.Doc])).ToList(), threads, ct);
        var run = new Run("rerank");
        for (int i = 0; i < pairs.Count; i++) run.Add(pairs[i].Query, pairs[i].Doc, logits[i]);
        return MeanNdcg10(split.Qrels.Restrict(queries), run);
    }
}

internal sealed class SimilarityEvaluator(TrainingData pairs) : TrainingEvaluator
{
    public override string Metric => $"Spearman, {pairs.Source}";

    internal override double Evaluate(TrainingModel model, int threads, CancellationToken ct)
    {
        var gold = pairs.Examples.Select(e => (double)e.Labels[0]).ToList();
        List<double> predicted;
        if (model.Kind == ModelKind.CrossEncoder)
        {
            float[] logits = model.Represent(pairs.Examples.Select(e => model.EncodePair(e.Texts[0], e.Texts[1])).ToList(), threads, ct);
            predicted = logits.Select(l => (double)l).ToList();
        }
        else
        {
            int n = pairs.Count, dim = model.Head.Dimension;
            float[] e = model.Represent(pairs.Examples.SelectMany(x => new[] { x.Texts[0], x.Texts[1] }).Select(model.EncodeText).ToList(), threads, ct);
            predicted = Enumerable.Range(0, n).Select(i => (double)TensorPrimitives.CosineSimilarity(e.AsSpan(2 * i * dim, dim), e.AsSpan((2 * i + 1) * dim, dim))).ToList();
        }
        return Correlation.Spearman(predicted, gold);
    }
}

/// <summary>First-stage candidates for reranking evaluation: each judged query's top documents, best first.</summary>
public static class FirstStageCandidates
{
    /// <summary>BM25 (Anserini's k1 0.9, b 0.4) over the split's corpus.</summary>
    public static IReadOnlyDictionary<string, IReadOnlyList<string>> Bm25(RetrievalSplit split, int top)
    {
        var index = Bm25Index(split);
        return split.Qrels.QueryIds.ToDictionary(q => q, q => (IReadOnlyList<string>)index.Search(split.Queries[q], top).Select(h => h.DocId).ToList(), StringComparer.Ordinal);
    }

    /// <summary>Reciprocal rank fusion (k = 60) of BM25's and the bi-encoder's exact cosine top <paramref name="top"/>, as hybrid search fuses them.</summary>
    public static IReadOnlyDictionary<string, IReadOnlyList<string>> Hybrid(RetrievalSplit split, SentenceEncoder encoder, int top, CancellationToken ct = default)
    {
        var index = Bm25Index(split);
        float[][] docs = encoder.Encode(split.Corpus.Select(d => d.FullText).ToList(), ct);
        using var dense = new FlatIndex(encoder.Dimension, DistanceMetric.Cosine);
        dense.AddBatch(docs.Select((v, i) => new VectorRecord(i, v)).ToList(), ct: ct);
        var queries = split.Qrels.QueryIds.ToList();
        float[][] vectors = encoder.Encode(queries.Select(q => split.Queries[q]).ToList(), ct);
        var result = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        for (int i = 0; i < queries.Count; i++)
        {
            var lexical = index.Search(split.Queries[queries[i]], top).Select(h => h.DocId).ToList();
            var semantic = dense.Search(vectors[i], top).Select(h => split.Corpus[(int)h.Id].Id).ToList();
            result[queries[i]] = Retrieval.ReciprocalRankFusion.Fuse<string>([semantic, lexical]).Take(top).Select(f => f.Key).ToList();
        }
        return result;
    }

    private static Retrieval.Lexical.Bm25Index Bm25Index(RetrievalSplit split)
    {
        var index = new Retrieval.Lexical.Bm25Index();
        foreach (var d in split.Corpus) index.Add(d.Id, d.FullText);
        return index;
    }
}
