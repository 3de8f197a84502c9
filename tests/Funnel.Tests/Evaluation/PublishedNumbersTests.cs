using Funnel.Evaluation;
using Funnel.Retrieval.Lexical;

namespace Funnel.Tests.Evaluation;

/// <summary>Our BM25 and metrics against published numbers on the real shared datasets.</summary>
public class PublishedNumbersTests
{
    [Fact]
    public void TrecDl2019_Bm25CandidateOrder_HasPublishedNdcgAt10()
    {
        var set = TrecDlRerankSet.Load(TestPaths.SharedDataset("trec-dl-2019-passage"));
        Assert.Equal("dl19", set.Name);
        Assert.Equal(43, set.Queries.Count);
        Assert.All(set.Queries, q => Assert.Equal(100, q.Candidates.Count));

        var result = Metrics.Evaluate(set.Qrels, set.FirstStageRun(), [Measure.NdcgAt(10)], new EvaluationOptions(TrecDlRerankSet.RelevanceThreshold));
        Assert.Equal(43, result.QueryCount);
        // Pyserini's published BM25 (default) nDCG@10 on DL19 passage; trec_eval prints 4 decimals.
        Assert.Equal(0.5058, result.Mean(Measure.NdcgAt(10)), 0.00005);
    }

    [Fact]
    public async Task BeirNfCorpus_Bm25_IsWithinPublishedRange()
    {
        using var dataset = BeirDataset.Open(Path.Combine(TestPaths.SharedDataset("beir-nfcorpus"), "nfcorpus.zip"));
        var index = new Bm25Index();
        int documents = 0;
        await foreach (var doc in dataset.ReadCorpusAsync())
        {
            index.Add(doc.Id, doc.FullText);
            documents++;
        }
        Assert.Equal(3633, documents);
        var qrels = dataset.ReadQrels("test");
        var queries = (await dataset.ReadQueriesAsync()).Where(q => qrels[q.Id] != null).ToList();
        Assert.Equal(323, queries.Count);

        var run = new Run("bm25");
        foreach (var query in queries)
            foreach (var hit in index.Search(query.Text, 1000))
                run.Add(query.Id, hit.DocId, hit.Score);
        var result = Metrics.Evaluate(qrels, run, [Measure.NdcgAt(10), Measure.RecallAt(100)]);
        Assert.Equal(323, result.QueryCount);
        // Published BM25: 0.325 (BEIR, Elasticsearch), 0.322 (Pyserini flat, Lucene analyzer and k1 = 0.9, b = 0.4).
        double ndcg = result.Mean(Measure.NdcgAt(10));
        Assert.InRange(ndcg, 0.322 - 0.01, 0.322 + 0.01);
        Assert.InRange(result.Mean(Measure.RecallAt(100)), 0.2, 0.3);
    }
}
