using Funnel.Evaluation;

namespace Funnel.Tests.Evaluation;

public class MetricsTests
{
    // q1 judgments: d1 = 3, d2 = 2, d3 = 0, d4 = 1 (d9 unjudged). q2 is judged but absent from the run; q3 is in the
    // run but not judged. q1's run: d3 0.9, d1 0.8, d9 0.8, d2 0.5, d4 0.1. trec_eval breaks the d1/d9 tie by docid
    // descending, so the ranking is d3, d9, d1, d2, d4 with grades 0, –, 3, 2, 1.
    private static (Qrels, Run) Example()
    {
        var qrels = new Qrels();
        qrels.Add("q1", "d1", 3);
        qrels.Add("q1", "d2", 2);
        qrels.Add("q1", "d3", 0);
        qrels.Add("q1", "d4", 1);
        qrels.Add("q2", "d1", 1);
        var run = new Run();
        run.Add("q1", "d3", 0.9);
        run.Add("q1", "d1", 0.8);
        run.Add("q1", "d9", 0.8);
        run.Add("q1", "d2", 0.5);
        run.Add("q1", "d4", 0.1);
        run.Add("q3", "d1", 1.0);
        return (qrels, run);
    }

    [Fact]
    public void Ranking_BreaksTiesByDocIdDescending() =>
        Assert.Equal(["d3", "d9", "d1", "d2", "d4"], Example().Item2.Ranking("q1").Select(d => d.DocId));

    [Theory]
    // nDCG@3 = (3 / log2 4) / (3 + 2 / log2 3 + 1 / log2 4) = 1.5 / 4.761860 = 0.315003
    [InlineData("ndcg@3", 1, 0.315003)]
    // nDCG@5 = (1.5 + 2 / log2 5 + 1 / log2 6) / 4.761860 = 2.748206 / 4.761860 = 0.577129
    [InlineData("ndcg@5", 1, 0.577129)]
    [InlineData("ndcg@5", 2, 0.577129)] // grades are gains whatever the threshold
    [InlineData("mrr@10", 1, 1.0 / 3)]  // first relevant (d1) at rank 3
    [InlineData("mrr@2", 1, 0.0)]
    [InlineData("recall@3", 1, 1.0 / 3)] // 1 of the 3 relevant (d1, d2, d4) in the top 3
    [InlineData("recall@4", 2, 1.0)]     // with grade ≥ 2 only d1 and d2 are relevant
    [InlineData("p@3", 1, 1.0 / 3)]
    [InlineData("p@10", 1, 0.3)]         // trec_eval divides by the cutoff even past the end of the ranking
    [InlineData("map", 1, 0.477778)]     // (1/3 + 2/4 + 3/5) / 3
    [InlineData("map@4", 1, 0.277778)]   // (1/3 + 2/4) / 3
    [InlineData("map", 2, 0.416667)]     // (1/3 + 2/4) / 2
    public void SingleQuery_MatchesHandComputedValues(string measure, int threshold, double expected)
    {
        var (qrels, run) = Example();
        var result = Metrics.Evaluate(qrels, run, [Measure.Parse(measure)], new EvaluationOptions(threshold, CountMissingQueries: false));
        Assert.Equal(["q1"], result.PerQuery.Keys);
        Assert.Equal(expected, result.Mean(Measure.Parse(measure)), 1e-6);
    }

    [Fact]
    public void MissingQueries_CountAsZeroOnlyWhenAsked()
    {
        var (qrels, run) = Example();
        var counted = Metrics.Evaluate(qrels, run, [Measure.Map]);
        Assert.Equal(["q1", "q2"], counted.PerQuery.Keys.Order());
        Assert.Equal(0.477778 / 2, counted.Mean(Measure.Map), 1e-6);
        Assert.Equal(0, counted.PerQuery["q2"][0]);
        var skipped = Metrics.Evaluate(qrels, run, [Measure.Map], new EvaluationOptions(CountMissingQueries: false));
        Assert.Equal(1, skipped.QueryCount);
    }

    [Fact]
    public void QueryWithNoRelevantDocument_ScoresZero()
    {
        var judgments = new Dictionary<string, int> { ["a"] = 0, ["b"] = 1 };
        Assert.Equal(0, Metrics.Compute(Measure.NdcgAt(10), ["a"], new Dictionary<string, int> { ["a"] = 0 }));
        Assert.Equal(0, Metrics.Compute(Measure.RecallAt(10), ["a", "b"], judgments, relevanceThreshold: 2));
        Assert.Equal(0, Metrics.Compute(Measure.Map, ["a", "b"], judgments, relevanceThreshold: 2));
        Assert.Equal(1, Metrics.Compute(Measure.NdcgAt(10), ["b", "a"], judgments));
    }

    [Theory]
    [InlineData("nDCG@10", MeasureKind.Ndcg, 10, "ndcg_cut_10")]
    [InlineData("MRR@10", MeasureKind.ReciprocalRank, 10, "recip_rank")]
    [InlineData("recall@100", MeasureKind.Recall, 100, "recall_100")]
    [InlineData("P@5", MeasureKind.Precision, 5, "P_5")]
    [InlineData("map", MeasureKind.AveragePrecision, 0, "map")]
    [InlineData("MAP@1000", MeasureKind.AveragePrecision, 1000, "map_cut_1000")]
    public void Measure_ParsesAndNames(string text, MeasureKind kind, int cutoff, string trecEval)
    {
        var measure = Measure.Parse(text);
        Assert.Equal(new Measure(kind, cutoff), measure);
        Assert.Equal(trecEval, measure.TrecEvalName);
        Assert.Equal(measure, Measure.Parse(measure.ToString()));
    }

    [Theory]
    [InlineData("ndcg@0")]
    [InlineData("ndcg@x")]
    [InlineData("bleu")]
    [InlineData("map@10@2")]
    public void Measure_RejectsNonsense(string text) => Assert.Throws<FormatException>(() => Measure.Parse(text));

    [Fact]
    public void IgnoreIdenticalIds_DropsTheQuerysOwnDocumentBeforeScoringAndKeepsItsJudgment()
    {
        // BEIR's rule: "q1" is also a corpus id, judged 2; d2 is judged 1. The run ranks q1 first, then d2, then d5 (unjudged).
        var qrels = Qrels.ReadTrec(new StringReader("q1 0 q1 2\nq1 0 d2 1\n"), "qrels");
        var run = Run.ReadTrec(new StringReader("q1 Q0 q1 1 0.9 x\nq1 Q0 d2 2 0.8 x\nq1 Q0 d5 3 0.7 x\n"), "run");
        double Ndcg(bool ignore) => Metrics.Evaluate(qrels, run, [Measure.NdcgAt(10)], new EvaluationOptions(IgnoreIdenticalIds: ignore)).Mean(Measure.NdcgAt(10));

        // Kept (trec_eval): the ideal order, nDCG = 1.
        Assert.Equal(1.0, Ndcg(false), 12);
        // Dropped: d2 moves to rank 1 with gain 1; the ideal still holds q1's grade 2: 1 / (2 + 1 / log2 3) = 0.380094.
        Assert.Equal(0.380094, Ndcg(true), 6);
        Assert.Equal(0.5, Metrics.Evaluate(qrels, run, [Measure.RecallAt(10)], new EvaluationOptions(IgnoreIdenticalIds: true)).Mean(Measure.RecallAt(10)), 12);
    }
}
