using System.Diagnostics;
using Funnel.Evaluation;
using Funnel.Retrieval.Lexical;

namespace Funnel.Bench.Bm25;

/// <summary>
/// BM25 on BEIR NFCorpus (title + text), optionally replicated <c>--scale</c> times with fresh ids to reach millions of
/// postings: indexing throughput, save/load, and query latency (all 3,237 NFCorpus queries) against an exhaustive
/// reference that scores every document from per-document term counts. The two must return the same top 10.
/// </summary>
internal static class Bm25Suite
{
    public const string Help = "BM25 index/query: bm25 [--shared ../shared] [--scale 1] [--k 1000] [--reference true] [--lucene true]";

    public static int Run(string[] args)
    {
        string shared = BenchArgs.Get(args, "--shared", Path.Combine(AppContext.BaseDirectory, "../../../../../../shared"));
        int scale = int.Parse(BenchArgs.Get(args, "--scale", "1"));
        int k = int.Parse(BenchArgs.Get(args, "--k", "1000"));
        bool reference = BenchArgs.Get(args, "--reference", "true") == "true";
        bool lucene = BenchArgs.Get(args, "--lucene", "true") == "true";

        using var dataset = BeirDataset.Open(Path.Combine(shared, "datasets", "beir-nfcorpus", "nfcorpus.zip"));
        var corpus = dataset.ReadCorpusAsync().ToBlockingEnumerable().Select(d => (d.Id, Text: d.FullText)).ToList();
        var beirQueries = dataset.ReadQueriesAsync().GetAwaiter().GetResult();
        var queries = beirQueries.Select(q => q.Text).ToList();
        long chars = corpus.Sum(d => (long)d.Text.Length) * scale;
        Console.WriteLine($"machine: {Environment.ProcessorCount} cores, .NET {Environment.Version}; NFCorpus × {scale} = {corpus.Count * scale:N0} docs " +
            $"({chars / 1e6:F1} M chars), {queries.Count:N0} queries, k = {k}");

        var index = new Bm25Index();
        long before = GC.GetTotalMemory(forceFullCollection: true);
        var clock = Stopwatch.StartNew();
        TimeSpan cpu = CpuTime();
        for (int copy = 0; copy < scale; copy++)
            foreach (var (id, text) in corpus)
                index.Add(copy == 0 ? id : $"{id}#{copy}", text);
        double indexSeconds = clock.Elapsed.TotalSeconds, indexCpu = (CpuTime() - cpu).TotalSeconds;
        long bytes = GC.GetTotalMemory(forceFullCollection: true) - before;
        // CPU time as well as wall time: on a shared machine the wall clock mostly measures the neighbours.
        Console.WriteLine($"index: {index.Count / indexSeconds:N0} docs/s wall ({indexSeconds:F2} s), {index.Count / indexCpu:N0} docs per CPU-second, " +
            $"{chars / 1e6 / indexCpu:F1} M chars per CPU-second; {index.TermCount:N0} terms, avgdl {index.AverageDocumentLength:F1}, ~{bytes / 1e6:F0} MB managed");

        string path = Path.Combine(Path.GetTempPath(), $"funnel-bench-{Guid.NewGuid():N}.bm25");
        try
        {
            clock.Restart();
            index.Save(path);
            double save = clock.Elapsed.TotalSeconds;
            clock.Restart();
            var loaded = Bm25Index.Load(path);
            Console.WriteLine($"save {save:F2} s, load {clock.Elapsed.TotalSeconds:F2} s, file {new FileInfo(path).Length / 1e6:F1} MB, {loaded.Count:N0} docs");
        }
        finally
        {
            File.Delete(path);
        }

        foreach (var q in queries.Take(50)) index.Search(q, k); // warm-up
        var latencies = new double[queries.Count];
        var ours = new IReadOnlyList<Bm25Hit>[queries.Count];
        cpu = CpuTime();
        for (int i = 0; i < queries.Count; i++)
        {
            long start = Stopwatch.GetTimestamp();
            ours[i] = index.Search(queries[i], k);
            latencies[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }
        Console.WriteLine($"search: {(CpuTime() - cpu).TotalMilliseconds * 1000 / queries.Count:F0} CPU-µs per query (1 thread)");
        clock.Restart();
        Parallel.For(0, queries.Count, i => index.Search(queries[i], k));
        double parallelQps = queries.Count / clock.Elapsed.TotalSeconds;
        Console.WriteLine("| engine | QPS 1 thread | p50 ms | p95 ms | p99 ms | QPS all cores |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|");
        Console.WriteLine(Row("Bm25Index (term-at-a-time)", latencies, parallelQps));
        if (lucene)
            CompareWithLucene(dataset, beirQueries, corpus, scale, k, index, indexSeconds, indexCpu, latencies, parallelQps, ours);

        if (reference)
        {
            var exhaustive = new ExhaustiveBm25(index.Analyzer, corpus, scale);
            int sample = Math.Min(queries.Count, 200);
            var refLatencies = new double[sample];
            int agree = 0;
            for (int i = 0; i < sample; i++)
            {
                long start = Stopwatch.GetTimestamp();
                var top = exhaustive.Search(queries[i], 10);
                refLatencies[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                if (top.SequenceEqual(ours[i].Take(10).Select(h => h.DocId))) agree++;
            }
            Console.WriteLine(Row($"exhaustive reference ({sample} queries)", refLatencies, double.NaN));
            Console.WriteLine($"identical top 10: {agree}/{sample} queries");
        }
        return 0;
    }

    private static TimeSpan CpuTime() => Process.GetCurrentProcess().TotalProcessorTime;

    /// <summary>
    /// Lucene.Net on the same documents and queries: indexing rate, query latency, its top-10 agreement with Funnel, and (on the
    /// unreplicated corpus) both engines' NFCorpus test nDCG@10 under BEIR's protocol.
    /// </summary>
    private static void CompareWithLucene(BeirDataset dataset, IReadOnlyList<BeirQuery> queries, List<(string Id, string Text)> corpus, int scale, int k,
        Bm25Index funnel, double funnelIndexSeconds, double funnelIndexCpu, double[] funnelLatencies, double funnelParallelQps, IReadOnlyList<Bm25Hit>[] funnelHits)
    {
        using var lucene = new LuceneBm25();
        var clock = Stopwatch.StartNew();
        TimeSpan cpu = CpuTime();
        lucene.Index(Enumerable.Range(0, scale).SelectMany(copy => corpus.Select(d => (copy == 0 ? d.Id : $"{d.Id}#{copy}", d.Text))));
        double indexSeconds = clock.Elapsed.TotalSeconds, indexCpu = (CpuTime() - cpu).TotalSeconds;

        foreach (var q in queries.Take(50)) lucene.Search(q.Text, k); // warm-up
        var latencies = new double[queries.Count];
        var hits = new IReadOnlyList<(string Id, float Score)>[queries.Count];
        for (int i = 0; i < queries.Count; i++)
        {
            long start = Stopwatch.GetTimestamp();
            hits[i] = lucene.Search(queries[i].Text, k);
            latencies[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }
        clock.Restart();
        Parallel.For(0, queries.Count, i => lucene.Search(queries[i].Text, k));
        double parallelQps = queries.Count / clock.Elapsed.TotalSeconds;
        Console.WriteLine(Row("Lucene.Net 4.8 BM25Similarity", latencies, parallelQps));

        int sameTop10 = Enumerable.Range(0, queries.Count).Count(i => hits[i].Take(10).Select(h => h.Id).SequenceEqual(funnelHits[i].Take(10).Select(h => h.DocId)));
        Console.WriteLine();
        Console.WriteLine($"| BM25 anchor | Funnel Bm25Index | Lucene.Net 4.8 | Funnel / Lucene |");
        Console.WriteLine("|---|---:|---:|---:|");
        Console.WriteLine($"| indexing docs/s (wall) | {funnel.Count / funnelIndexSeconds:N0} | {lucene.Count / indexSeconds:N0} | {indexSeconds / funnelIndexSeconds:F2}× |");
        Console.WriteLine($"| indexing docs per CPU-second | {funnel.Count / funnelIndexCpu:N0} | {lucene.Count / indexCpu:N0} | {indexCpu / funnelIndexCpu:F2}× |");
        Console.WriteLine($"| QPS, 1 thread, top {k} | {1000 / funnelLatencies.Average():N0} | {1000 / latencies.Average():N0} | {latencies.Average() / funnelLatencies.Average():F2}× |");
        Console.WriteLine($"| QPS, all cores | {funnelParallelQps:N0} | {parallelQps:N0} | {funnelParallelQps / parallelQps:F2}× |");
        Console.WriteLine($"| queries with the same top 10 | {sameTop10:N0} / {queries.Count:N0} | | |");
        if (scale == 1)
        {
            // BEIR's protocol, as `funnel eval` runs it: the judged test queries, the query's own id dropped from its ranking.
            var qrels = dataset.ReadQrels("test");
            Run funnelRun = new("funnel"), luceneRun = new("lucene");
            for (int i = 0; i < queries.Count; i++)
            {
                if (qrels[queries[i].Id] is null) continue;
                funnelRun.Add(queries[i].Id, funnelHits[i].Select(h => new ScoredDocument(h.DocId, h.Score)));
                luceneRun.Add(queries[i].Id, hits[i].Select(h => new ScoredDocument(h.Id, h.Score)));
            }
            var options = new EvaluationOptions(IgnoreIdenticalIds: true);
            double Ndcg(Run run) => Metrics.Evaluate(qrels, run, [Measure.NdcgAt(10)], options).Mean(Measure.NdcgAt(10));
            Console.WriteLine($"| NFCorpus test nDCG@10 ({qrels.QueryIds.Count} queries) | {Ndcg(funnelRun):F4} | {Ndcg(luceneRun):F4} | Pyserini flat: 0.322 |");
        }
    }

    private static string Row(string name, double[] ms, double parallelQps)
    {
        var sorted = ms.Order().ToArray();
        double P(double p) => sorted[Math.Min(sorted.Length - 1, (int)(p * sorted.Length))];
        return $"| {name} | {1000 / ms.Average():N0} | {P(0.5):F2} | {P(0.95):F2} | {P(0.99):F2} | {(double.IsNaN(parallelQps) ? "–" : parallelQps.ToString("N0"))} |";
    }

    /// <summary>The textbook scorer: every document's BM25 from its own term counts; no inverted index.</summary>
    private sealed class ExhaustiveBm25
    {
        private readonly EnglishAnalyzer _analyzer;
        private readonly List<(string Id, Dictionary<string, int> Tf, int Length)> _docs = [];
        private readonly Dictionary<string, int> _df = new(StringComparer.Ordinal);
        private readonly double _avgdl;

        public ExhaustiveBm25(EnglishAnalyzer analyzer, List<(string Id, string Text)> corpus, int scale)
        {
            _analyzer = analyzer;
            var analyzed = corpus.Select(d => (d.Id, Terms: analyzer.Analyze(d.Text))).ToList();
            for (int copy = 0; copy < scale; copy++)
                foreach (var (id, terms) in analyzed)
                {
                    var tf = terms.GroupBy(t => t).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
                    foreach (string t in tf.Keys) _df[t] = _df.GetValueOrDefault(t) + 1;
                    _docs.Add((copy == 0 ? id : $"{id}#{copy}", tf, terms.Count));
                }
            _avgdl = _docs.Average(d => (double)d.Length);
        }

        public IEnumerable<string> Search(string query, int k)
        {
            var terms = _analyzer.Analyze(query);
            return _docs.Select(d => (d.Id, Score: terms.Sum(t =>
                {
                    if (!d.Tf.TryGetValue(t, out int tf)) return 0.0;
                    double idf = Bm25Index.Idf(_df[t], _docs.Count);
                    return idf * tf / (tf + 0.9 * (1 - 0.4 + 0.4 * d.Length / _avgdl));
                })))
                .Where(x => x.Score > 0)
                .OrderByDescending(x => x.Score).ThenBy(x => x.Id, StringComparer.Ordinal)
                .Take(k).Select(x => x.Id).ToList();
        }
    }
}
