using System.Globalization;

namespace Funnel.Evaluation;

public enum MeasureKind { Ndcg, ReciprocalRank, Recall, Precision, AveragePrecision }

/// <summary>An IR measure at a rank cutoff (0 = the whole ranking), defined as trec_eval defines it.</summary>
public readonly record struct Measure(MeasureKind Kind, int Cutoff = 0)
{
    public static Measure NdcgAt(int k) => new(MeasureKind.Ndcg, Positive(k));
    public static Measure MrrAt(int k) => new(MeasureKind.ReciprocalRank, Positive(k));
    public static Measure RecallAt(int k) => new(MeasureKind.Recall, Positive(k));
    public static Measure PrecisionAt(int k) => new(MeasureKind.Precision, Positive(k));
    public static Measure MapAt(int k) => new(MeasureKind.AveragePrecision, Positive(k));
    public static Measure Map => new(MeasureKind.AveragePrecision);

    /// <summary>The usual report set: nDCG@10, MRR@10, Recall@100, MAP.</summary>
    public static IReadOnlyList<Measure> Standard { get; } = [NdcgAt(10), MrrAt(10), RecallAt(100), Map];

    private static int Positive(int k) => k > 0 ? k : throw new ArgumentOutOfRangeException(nameof(k), k, "a rank cutoff must be ≥ 1");

    /// <summary>Display name: nDCG@10, MRR@10, Recall@100, P@10, MAP, MAP@100.</summary>
    public override string ToString()
    {
        string name = Kind switch
        {
            MeasureKind.Ndcg => "nDCG",
            MeasureKind.ReciprocalRank => "MRR",
            MeasureKind.Recall => "Recall",
            MeasureKind.Precision => "P",
            _ => "MAP",
        };
        return Cutoff > 0 ? $"{name}@{Cutoff}" : name;
    }

    /// <summary>The trec_eval measure this equals (recip_rank with a cutoff equals trec_eval's recip_rank with <c>-M k</c>).</summary>
    public string TrecEvalName => (Kind, Cutoff) switch
    {
        (MeasureKind.Ndcg, 0) => "ndcg",
        (MeasureKind.Ndcg, var k) => $"ndcg_cut_{k}",
        (MeasureKind.ReciprocalRank, _) => "recip_rank",
        (MeasureKind.Recall, 0) => "recall",
        (MeasureKind.Recall, var k) => $"recall_{k}",
        (MeasureKind.Precision, 0) => "P",
        (MeasureKind.Precision, var k) => $"P_{k}",
        (MeasureKind.AveragePrecision, 0) => "map",
        (_, var k) => $"map_cut_{k}",
    };

    /// <summary>Parses <c>ndcg@10</c>, <c>mrr@10</c>, <c>recall@100</c>, <c>p@10</c>, <c>map</c>, <c>map@100</c> (case-insensitive).</summary>
    public static Measure Parse(string text)
    {
        string[] parts = text.Trim().ToLowerInvariant().Split('@');
        int cutoff = 0;
        if (parts.Length > 2 || (parts.Length == 2 && (!int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out cutoff) || cutoff < 1)))
            throw new FormatException($"measure '{text}': expected NAME or NAME@K with K ≥ 1 (e.g. ndcg@10, map)");
        MeasureKind kind = parts[0] switch
        {
            "ndcg" => MeasureKind.Ndcg,
            "mrr" or "rr" or "recip_rank" => MeasureKind.ReciprocalRank,
            "recall" or "r" => MeasureKind.Recall,
            "p" or "precision" => MeasureKind.Precision,
            "map" or "ap" => MeasureKind.AveragePrecision,
            _ => throw new FormatException($"measure '{text}': unknown name '{parts[0]}' (expected ndcg, mrr, recall, p or map)"),
        };
        return new Measure(kind, cutoff);
    }
}

/// <summary>
/// How queries are counted. <see cref="RelevanceThreshold"/> is trec_eval's <c>-l</c>: the least grade that counts as
/// relevant for the binary measures (MRR, recall, precision, MAP); nDCG always uses the grades as gains.
/// Queries without judgments are never evaluated (nothing to compare with). Judged queries that are absent from the
/// run score 0 on every measure when <see cref="CountMissingQueries"/> is set (trec_eval <c>-c</c>, the default here:
/// a system that returns nothing for a query should not look better for it), and are skipped otherwise (trec_eval's
/// and pytrec_eval's default). <see cref="IgnoreIdenticalIds"/> is BEIR's <c>EvaluateRetrieval.evaluate(ignore_identical_ids=True)</c>:
/// a retrieved document whose id is the query's own id is dropped from the ranking before scoring (the documents below it
/// move up), for corpora that hold their queries; the judgments are left as they are.
/// </summary>
public sealed record EvaluationOptions(int RelevanceThreshold = 1, bool CountMissingQueries = true, bool IgnoreIdenticalIds = false);

/// <summary>Per-query values and means of a set of measures.</summary>
public sealed class EvaluationResult(IReadOnlyList<Measure> measures, IReadOnlyDictionary<string, double[]> perQuery)
{
    public IReadOnlyList<Measure> Measures { get; } = measures;

    /// <summary>Query id → one value per entry of <see cref="Measures"/>.</summary>
    public IReadOnlyDictionary<string, double[]> PerQuery { get; } = perQuery;

    public int QueryCount => PerQuery.Count;

    /// <summary>The arithmetic mean over the evaluated queries (0 when there are none).</summary>
    public double Mean(Measure measure)
    {
        int index = Measures.ToList().IndexOf(measure);
        if (index < 0) throw new ArgumentException($"{measure} was not evaluated", nameof(measure));
        return PerQuery.Count == 0 ? 0 : PerQuery.Values.Average(v => v[index]);
    }
}

/// <summary>IR measures exactly as trec_eval 9.x computes them (see <see cref="Measure"/> and <see cref="EvaluationOptions"/>).</summary>
public static class Metrics
{
    public static EvaluationResult Evaluate(Qrels qrels, Run run, IReadOnlyList<Measure> measures, EvaluationOptions? options = null)
    {
        options ??= new EvaluationOptions();
        var runQueries = run.QueryIds.ToHashSet(StringComparer.Ordinal);
        var perQuery = new Dictionary<string, double[]>(StringComparer.Ordinal);
        foreach (string queryId in qrels.QueryIds)
        {
            if (!runQueries.Contains(queryId) && !options.CountMissingQueries) continue;
            var ranking = run.Ranking(queryId).Select(d => d.DocId).Where(id => !options.IgnoreIdenticalIds || id != queryId).ToArray();
            var judgments = qrels[queryId]!;
            perQuery.Add(queryId, measures.Select(m => Compute(m, ranking, judgments, options.RelevanceThreshold)).ToArray());
        }
        return new EvaluationResult(measures, perQuery);
    }

    /// <summary>
    /// One query's value of <paramref name="measure"/> for <paramref name="ranking"/> (document ids, best first, no
    /// duplicates) given its <paramref name="judgments"/>. Unjudged documents (absent or with a negative grade) are
    /// non-relevant with gain 0.
    /// </summary>
    public static double Compute(Measure measure, IReadOnlyList<string> ranking, IReadOnlyDictionary<string, int> judgments, int relevanceThreshold = 1)
    {
        int depth = measure.Cutoff > 0 ? Math.Min(measure.Cutoff, ranking.Count) : ranking.Count;
        int relevant = judgments.Values.Count(g => g >= 0 && g >= relevanceThreshold);
        bool IsRelevant(int rank) => judgments.TryGetValue(ranking[rank], out int g) && g >= 0 && g >= relevanceThreshold;

        switch (measure.Kind)
        {
            case MeasureKind.Ndcg:
            {
                double dcg = 0;
                for (int i = 0; i < depth; i++)
                    if (judgments.TryGetValue(ranking[i], out int g) && g > 0) dcg += g / Discount(i);
                // The ideal ranking: every judged document, best grade first, cut at the same depth.
                var ideal = judgments.Values.Where(g => g > 0).OrderDescending().ToArray();
                int idealDepth = measure.Cutoff > 0 ? Math.Min(measure.Cutoff, ideal.Length) : ideal.Length;
                double idcg = 0;
                for (int i = 0; i < idealDepth; i++) idcg += ideal[i] / Discount(i);
                return idcg > 0 ? dcg / idcg : 0;
            }
            case MeasureKind.ReciprocalRank:
                for (int i = 0; i < depth; i++)
                    if (IsRelevant(i)) return 1.0 / (i + 1);
                return 0;
            case MeasureKind.Recall:
                return relevant == 0 ? 0 : (double)CountRelevant(depth) / relevant;
            case MeasureKind.Precision:
                // trec_eval divides by the cutoff even when fewer documents were retrieved.
                int denominator = measure.Cutoff > 0 ? measure.Cutoff : ranking.Count;
                return denominator == 0 ? 0 : (double)CountRelevant(depth) / denominator;
            default:
            {
                if (relevant == 0) return 0;
                double sum = 0;
                int found = 0;
                for (int i = 0; i < depth; i++)
                    if (IsRelevant(i)) sum += (double)++found / (i + 1);
                return sum / relevant;
            }
        }

        int CountRelevant(int n)
        {
            int count = 0;
            for (int i = 0; i < n; i++)
                if (IsRelevant(i)) count++;
            return count;
        }
    }

    // trec_eval: rank 1 is not discounted, rank r > 1 is divided by log2(r); log2(r + 1) agrees at r = 1.
    private static double Discount(int index) => Math.Log2(index + 2);
}
