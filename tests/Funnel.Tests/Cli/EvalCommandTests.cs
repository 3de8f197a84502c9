using System.Text.Json;
using Funnel.Cli;
using Funnel.Evaluation;
using static Funnel.Tests.Cli.CliRun;

namespace Funnel.Tests.Cli;

/// <summary>funnel eval, run in-process with captured output.</summary>
public sealed class EvalCommandTests : IDisposable
{
    private readonly string _temp = Directory.CreateTempSubdirectory("funnel-eval-").FullName;

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    private static JsonElement Metric(string json, string name) => JsonDocument.Parse(json).RootElement.GetProperty("metrics").GetProperty(name);

    [Fact]
    public void TrecDl_Bm25Order_ReportsPublishedNdcgAndWritesTheRun()
    {
        string runFile = Path.Combine(_temp, "dl19.trec");
        var (code, stdout, stderr) = Run("eval", "--dataset", TestPaths.SharedDataset("trec-dl-2019-passage"), "--json", "--run-file", runFile);
        Assert.True(code == 0, stderr);
        Assert.Equal(0.5058, Metric(stdout, "nDCG@10").GetDouble(), 0.00005);
        Assert.Equal(2, JsonDocument.Parse(stdout).RootElement.GetProperty("relevanceLevel").GetInt32());
        Assert.Equal(43 * 100, File.ReadAllLines(runFile).Length);
        // The run file alone reproduces the number.
        var qrels = Qrels.ReadTrec(Path.Combine(TestPaths.SharedDataset("trec-dl-2019-passage"), "qrels.dl19-passage.txt"));
        Assert.Equal(0.5058, Metrics.Evaluate(qrels, Funnel.Evaluation.Run.ReadTrec(runFile), [Measure.NdcgAt(10)]).Mean(Measure.NdcgAt(10)), 0.00005);
    }

    [Fact]
    public void TrecDl_RerankWithARandomCrossEncoder_Completes()
    {
        string model = Path.Combine(_temp, "ce");
        Assert.Equal(0, Run("model", "random", "--like", TestPaths.SharedModel("ms-marco-MiniLM-L-6-v2"), "--out", model, "--arch", "small", "--cross-encoder").Code);
        string runFile = Path.Combine(_temp, "rerank.trec");
        var (code, stdout, stderr) = Run("eval", "-d", TestPaths.SharedDataset("trec-dl-2019-passage"), "--rerank", model, "--max-queries", "3",
            "--top", "20", "--k", "5", "--run-file", runFile, "--measure", "ndcg@5,p@5");
        Assert.True(code == 0, stderr);
        Assert.Contains("nDCG@5", stdout);
        Assert.Contains("rerank: 60 pairs", stdout);
        // Issue 11, defect 9: stderr is not a terminal here, and the rerank still reports its progress in plain lines.
        Assert.Contains("reranking: 1/3 (33%)", stderr);
        Assert.Contains("reranking: 3/3 (100%)", stderr);
        var run = Funnel.Evaluation.Run.ReadTrec(runFile);
        Assert.Equal("bm25.rerank", run.Tag);
        var set = TrecDlRerankSet.Load(TestPaths.SharedDataset("trec-dl-2019-passage"));
        foreach (var query in set.Queries.Take(3))
        {
            var ranking = run.Ranking(query.Id);
            Assert.Equal(5, ranking.Length);
            Assert.All(ranking, d => Assert.Contains(d.DocId, query.Candidates.Take(20).Select(c => c.DocId)));
        }
    }

    [Fact]
    public void TrecDl_RerankWeightZeroKeepsTheShippedOrderAndNeedsACrossEncoder()
    {
        string dataset = TestPaths.SharedDataset("trec-dl-2019-passage");
        var (noModel, _, noModelError) = Run("eval", "-d", dataset, "--rerank-weight", "0.5");
        Assert.Equal(2, noModel);
        Assert.Contains("--rerank-weight blends a cross-encoder's order with the first stage's: give the cross-encoder with --rerank", noModelError);
        var (outOfRange, _, outOfRangeError) = Run("eval", "-d", dataset, "--rerank-weight", "1.5", "--rerank", "any");
        Assert.Equal(2, outOfRange);
        Assert.Contains("--rerank-weight must be between 0 and 1 (got 1.5)", outOfRangeError);

        string model = Path.Combine(_temp, "ce");
        Assert.Equal(0, Run("model", "random", "--like", TestPaths.SharedModel("ms-marco-MiniLM-L-6-v2"), "--out", model, "--arch", "small", "--cross-encoder").Code);
        string runFile = Path.Combine(_temp, "blend.trec");
        var (code, stdout, stderr) = Run("eval", "-d", dataset, "--rerank", model, "--rerank-weight", "0", "--max-queries", "2", "--top", "10",
            "--run-file", runFile, "--json");
        Assert.True(code == 0, stderr);
        Assert.Equal(0.0, JsonDocument.Parse(stdout).RootElement.GetProperty("rerankWeight").GetDouble());
        var run = Funnel.Evaluation.Run.ReadTrec(runFile);
        Assert.Equal("bm25.rerank-w0", run.Tag);
        foreach (var query in TrecDlRerankSet.Load(dataset).Queries.Take(2))
            Assert.Equal(query.Candidates.Take(10).Select(c => c.DocId), run.Ranking(query.Id).Select(d => d.DocId));
    }

    [Fact]
    public void Beir_Bm25OnATinyCorpus_MatchesHandComputedMetrics()
    {
        string dir = WriteBeir(
            corpus: ["{\"_id\": \"d1\", \"title\": \"Apples\", \"text\": \"apple pie\"}", "{\"_id\": \"d2\", \"text\": \"banana bread\"}", "{\"_id\": \"d3\", \"text\": \"cherry jam\"}"],
            queries: ["{\"_id\": \"q1\", \"text\": \"apple\"}", "{\"_id\": \"q2\", \"text\": \"banana\"}", "{\"_id\": \"q3\", \"text\": \"not judged\"}"],
            qrels: ["q1\td1\t1", "q2\td3\t2"]);
        string runFile = Path.Combine(_temp, "tiny.trec");
        var (code, stdout, stderr) = Run("eval", "-d", dir, "--json", "--run-file", runFile);
        Assert.True(code == 0, stderr);
        // q1: its only judged document d1 is the only hit → nDCG@10 = MRR@10 = recall = AP = 1.
        // q2: "banana" finds only d2, unjudged; the relevant d3 is not retrieved → all 0. Means over the 2 judged queries: 0.5.
        foreach (string m in new[] { "nDCG@10", "MRR@10", "Recall@100", "MAP" }) Assert.Equal(0.5, Metric(stdout, m).GetDouble(), 1e-12);
        Assert.Equal(["q1 Q0 d1 1", "q2 Q0 d2 1"], File.ReadAllLines(runFile).Select(l => string.Join(' ', l.Split(' ')[..4])));
    }

    [Fact]
    public void Beir_Bm25ThenRerank_KeepsTheFirstStageCandidates()
    {
        string model = Path.Combine(_temp, "ce");
        Assert.Equal(0, Run("model", "random", "--like", TestPaths.SharedModel("ms-marco-MiniLM-L-6-v2"), "--out", model, "--arch", "small", "--cross-encoder").Code);
        string dir = WriteBeir(
            corpus: ["{\"_id\": \"d1\", \"text\": \"apple pie\"}", "{\"_id\": \"d2\", \"text\": \"apple tart\"}", "{\"_id\": \"d3\", \"text\": \"apple jam\"}", "{\"_id\": \"d4\", \"text\": \"cherry\"}"],
            queries: ["{\"_id\": \"q1\", \"text\": \"apple\"}"],
            qrels: ["q1\td2\t1"]);
        string runFile = Path.Combine(_temp, "rerank.trec");
        var (code, stdout, stderr) = Run("eval", "-d", dir, "--rerank", model, "--top", "2", "--json", "--run-file", runFile);
        Assert.True(code == 0, stderr);
        // BM25 ties the three apple documents; the top 2 by id are d1 and d2, and only they are reranked.
        var reranked = Funnel.Evaluation.Run.ReadTrec(runFile).Ranking("q1").Select(d => d.DocId).Order();
        Assert.Equal(["d1", "d2"], reranked);
        Assert.Equal(1.0, Metric(stdout, "Recall@100").GetDouble());
    }

    [Theory]
    [InlineData("dense")]
    [InlineData("hybrid")]
    public void Beir_DenseAndHybrid_GoThroughACollectionThatIsReused(string retriever)
    {
        string model = Path.Combine(_temp, "bi");
        Assert.Equal(0, Run("model", "random", "--like", TestPaths.SharedModel("all-MiniLM-L6-v2"), "--out", model, "--arch", "small").Code);
        string dir = WriteBeir(
            corpus: ["{\"_id\": \"d1\", \"title\": \"Apples\", \"text\": \"apple pie\"}", "{\"_id\": \"d2\", \"text\": \"banana bread\"}", "{\"_id\": \"d3\", \"text\": \"cherry jam\"}"],
            queries: ["{\"_id\": \"q1\", \"text\": \"apple\"}", "{\"_id\": \"q2\", \"text\": \"banana\"}"],
            qrels: ["q1\td1\t1", "q2\td3\t2"]);
        string collection = Path.Combine(_temp, "collection");
        string runFile = Path.Combine(_temp, $"{retriever}.trec");
        string[] args = ["eval", "-d", dir, "--retriever", retriever, "--bi-encoder", model, "--collection", collection, "--json", "--run-file", runFile];
        var (code, stdout, stderr) = Run(args);
        Assert.True(code == 0, stderr);
        // Dense search over 3 documents with N = 1000 returns all of them, so every relevant document is retrieved.
        Assert.Equal(1.0, Metric(stdout, "Recall@100").GetDouble());
        Assert.Equal(6, File.ReadAllLines(runFile).Length);
        Assert.Contains("3 documents embedded", stdout);

        var again = Run(args);
        Assert.True(again.Code == 0, again.Err);
        Assert.Contains("0 documents embedded, 3 already there", again.Out);
        Assert.Equal(Metric(stdout, "nDCG@10").GetDouble(), Metric(again.Out, "nDCG@10").GetDouble());
    }

    /// <summary>
    /// BEIR's rule for a corpus that holds its queries, through every first stage: the query q1 is also document q1, with the
    /// same text as d2, and both are judged (q1 grade 2, d2 grade 1). With N = 1, the first stage must return d2, not q1 itself
    /// (which ties with d2 at cosine 1, and wins the tie by id): q1's nDCG@10 = 1 / (2 + 1 / log2 3) = 0.380094 instead of
    /// 2 / 2.630930 = 0.760188; q2 finds its one relevant document, 1. Mean 0.690047. Recall@100 of q1 is 1/2: its own document
    /// stays in the judgments, as in BEIR.
    /// </summary>
    [Theory]
    [InlineData("bm25")]
    [InlineData("dense")]
    [InlineData("hybrid")]
    [InlineData("dense", "--exact")]
    [InlineData("hybrid", "--exact")]
    [InlineData("bm25", "--rerank")]
    [InlineData("hybrid", "--rerank")]
    [InlineData("dense", "--exact", "--rerank")]
    public void Beir_AQueryWhoseIdIsACorpusId_NeverRetrievesItself(string retriever, params string[] more)
    {
        string dir = WriteBeir(
            corpus: ["{\"_id\": \"q1\", \"text\": \"apple pie recipe\"}", "{\"_id\": \"d2\", \"text\": \"apple pie recipe\"}",
                     "{\"_id\": \"d3\", \"text\": \"banana bread\"}", "{\"_id\": \"d4\", \"text\": \"cherry jam\"}"],
            queries: ["{\"_id\": \"q1\", \"text\": \"apple pie recipe\"}", "{\"_id\": \"q2\", \"text\": \"banana bread\"}"],
            qrels: ["q1\tq1\t2", "q1\td2\t1", "q2\td3\t1"]);
        var args = new List<string> { "eval", "-d", dir, "--retriever", retriever, "--top", "1", "--json", "--run-file", Path.Combine(_temp, "run.trec") };
        if (retriever != "bm25") args.AddRange(["--bi-encoder", SmallModel("bi", crossEncoder: false)]);
        if (retriever != "bm25" && !more.Contains("--exact")) args.AddRange(["--collection", Path.Combine(_temp, "collection")]);
        if (more.Contains("--exact")) args.Add("--exact");
        if (more.Contains("--rerank")) args.AddRange(["--rerank", SmallModel("ce", crossEncoder: true)]);

        var (code, stdout, stderr) = Run([.. args]);
        Assert.True(code == 0, stderr);
        Assert.Equal(["q1 Q0 d2", "q2 Q0 d3"], File.ReadAllLines(Path.Combine(_temp, "run.trec")).Select(l => string.Join(' ', l.Split(' ')[..3])));
        Assert.Equal((1 / (2 + 1 / Math.Log2(3)) + 1) / 2, Metric(stdout, "nDCG@10").GetDouble(), 12);
        Assert.Equal(0.690047, Metric(stdout, "nDCG@10").GetDouble(), 6);
        Assert.Equal(0.75, Metric(stdout, "Recall@100").GetDouble(), 12);
    }

    /// <summary>Every BEIR first stage passes the rerank weight on: at 0 the reranked run keeps the first stage's order.</summary>
    [Theory]
    [InlineData("bm25")]
    [InlineData("hybrid")]
    [InlineData("dense", "--exact")]
    public void Beir_RerankWeightZeroKeepsEachFirstStagesOrder(string retriever, params string[] more)
    {
        string dir = WriteBeir(
            corpus: ["{\"_id\": \"d1\", \"text\": \"apple pie recipe\"}", "{\"_id\": \"d2\", \"text\": \"apple tart with pie crust\"}",
                     "{\"_id\": \"d3\", \"text\": \"banana bread\"}", "{\"_id\": \"d4\", \"text\": \"cherry pie\"}"],
            queries: ["{\"_id\": \"q1\", \"text\": \"apple pie\"}", "{\"_id\": \"q2\", \"text\": \"bread\"}"],
            qrels: ["q1\td2\t1", "q2\td3\t1"]);
        var args = new List<string> { "eval", "-d", dir, "--retriever", retriever, "--top", "3", "--json" };
        if (retriever != "bm25") args.AddRange(["--bi-encoder", SmallModel("bi", crossEncoder: false)]);
        if (retriever != "bm25" && !more.Contains("--exact")) args.AddRange(["--collection", Path.Combine(_temp, "collection")]);
        args.AddRange(more);
        string first = Path.Combine(_temp, "first.trec"), blended = Path.Combine(_temp, "blended.trec");
        var plain = Run([.. args, "--run-file", first]);
        Assert.True(plain.Code == 0, plain.Err);
        var zero = Run([.. args, "--run-file", blended, "--rerank", SmallModel("ce", crossEncoder: true), "--rerank-weight", "0"]);
        Assert.True(zero.Code == 0, zero.Err);
        Run firstRun = Funnel.Evaluation.Run.ReadTrec(first), blendedRun = Funnel.Evaluation.Run.ReadTrec(blended);
        Assert.EndsWith(".rerank-w0", blendedRun.Tag);
        foreach (string q in new[] { "q1", "q2" })
            Assert.Equal(firstRun.Ranking(q).Select(d => d.DocId), blendedRun.Ranking(q).Select(d => d.DocId));
    }

    /// <summary>A random-weight model of the real tokenizer (small architecture), written once per test.</summary>
    private string SmallModel(string name, bool crossEncoder)
    {
        string folder = Path.Combine(_temp, name);
        if (Directory.Exists(folder)) return folder;
        string[] args = crossEncoder
            ? ["model", "random", "--like", TestPaths.SharedModel("ms-marco-MiniLM-L-6-v2"), "--out", folder, "--arch", "small", "--cross-encoder"]
            : ["model", "random", "--like", TestPaths.SharedModel("all-MiniLM-L6-v2"), "--out", folder, "--arch", "small"];
        Assert.Equal(0, Run(args).Code);
        return folder;
    }

    [Fact]
    public void Sts_ReportsTheCorrelationsOfTheBiEncodersCosines()
    {
        string dir = Path.Combine(_temp, "sts");
        Directory.CreateDirectory(dir);
        string[] lines =
        [
            "main\tMSRvid\t2012test\t0001\t5.000\tA plane is taking off.\tAn air plane is taking off.",
            "main\tMSRvid\t2012test\t0004\t3.800\tA man is playing a large flute.\tA man is playing a flute.",
            "main\tMSRvid\t2012test\t0005\t3.800\tA man is spreading cheese on a pizza.\tA man is spreading shredded cheese on a pizza.",
            "main\tMSRvid\t2012test\t0006\t2.600\tThree men are playing chess.\tTwo men are playing chess.",
            "main\tMSRvid\t2012test\t0009\t0.500\tA man is playing the cello.\tA man seated is playing the cello.\tsource",
        ];
        File.WriteAllLines(Path.Combine(dir, "sts-test.csv"), lines);
        string model = SmallModel("bi", crossEncoder: false);
        var (code, stdout, stderr) = Run("eval", "-d", dir, "--bi-encoder", model, "--json");
        Assert.True(code == 0, stderr);
        JsonElement report = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal(5, report.GetProperty("pairs").GetInt32());

        // The same numbers from the library pieces: cosines of the two embeddings against the gold scores.
        var pairs = StsBenchmark.ReadSplit(dir, "test");
        using var encoder = Funnel.Inference.SentenceEncoder.Load(model);
        double[] cosines = [.. pairs.Select(p => Cosine(encoder.Encode(p.Sentence1), encoder.Encode(p.Sentence2)))];
        double[] gold = [5.0, 3.8, 3.8, 2.6, 0.5];
        Assert.Equal(Correlation.Spearman(cosines, gold), report.GetProperty("metrics").GetProperty("Spearman").GetDouble(), 6);
        Assert.Equal(Correlation.Pearson(cosines, gold), report.GetProperty("metrics").GetProperty("Pearson").GetDouble(), 6);

        var table = Run("eval", "-d", dir, "--bi-encoder", model);
        Assert.Contains("Spearman", table.Out);
        foreach (var (args, message) in new (string[], string)[]
                 {
                     (["eval", "-d", dir, "--split", "dev"], "no STS split 'dev' (sts-dev.csv; available: test)"),
                     (["eval", "-d", dir, "--rerank", model], "--rerank is for retrieval datasets"),
                     (["eval", "-d", dir, "--retriever", "bm25"], "--retriever is for retrieval datasets"),
                 })
        {
            var (badCode, _, badErr) = Run(args);
            Assert.True(badCode == 2, $"{string.Join(' ', args)} → {badCode}: {badErr}");
            Assert.Contains(message, badErr);
        }
    }

    private static double Cosine(float[] a, float[] b) =>
        a.Zip(b).Sum(p => (double)p.First * p.Second) / Math.Sqrt(a.Sum(v => (double)v * v) * b.Sum(v => (double)v * v));

    [Fact]
    public void BadInput_IsAClearErrorWithExitCode2()
    {
        string beir = WriteBeir(["{\"_id\": \"d1\", \"text\": \"x\"}", "{\"_id\": 5"], ["{\"_id\": \"q1\", \"text\": \"x\"}"], ["q1\td1\t1"]);
        (string[] Args, string Message)[] cases =
        [
            (["eval", "-d", Path.Combine(_temp, "missing")], "not a BEIR folder or zip"),
            (["eval", "-d", beir], "corpus.jsonl, line 2: not valid JSON"),
            (["eval", "-d", beir, "--split", "dev"], "no qrels for split 'dev' (available: test)"),
            (["eval", "-d", beir, "--top", "0"], "--top must be at least 1"),
            (["eval", "-d", beir, "--measure", "ndcg@ten"], "--measure"),
            (["eval", "-d", TestPaths.SharedDataset("trec-dl-2019-passage"), "--retriever", "hybrid"], "no corpus to index"),
            (["eval", "-d", beir, "--exact"], "--exact are for --retriever dense or hybrid"),
            (["eval", "-d", beir, "--retriever", "dense", "--exact", "--collection", Path.Combine(_temp, "c")], "leave out --collection"),
        ];
        foreach (var (args, message) in cases)
        {
            var (code, _, stderr) = Run(args);
            Assert.True(code == 2, $"{string.Join(' ', args)} → {code}: {stderr}");
            Assert.Contains(message, stderr);
            Assert.DoesNotContain("   at ", stderr);
        }
    }

    private string WriteBeir(string[] corpus, string[] queries, string[] qrels)
    {
        string dir = Path.Combine(_temp, $"beir-{Guid.NewGuid():N}");
        Directory.CreateDirectory(Path.Combine(dir, "qrels"));
        File.WriteAllLines(Path.Combine(dir, "corpus.jsonl"), corpus);
        File.WriteAllLines(Path.Combine(dir, "queries.jsonl"), queries);
        File.WriteAllLines(Path.Combine(dir, "qrels", "test.tsv"), ["query-id\tcorpus-id\tscore", .. qrels]);
        return dir;
    }
}
