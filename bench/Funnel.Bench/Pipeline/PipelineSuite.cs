using System.Diagnostics;
using Funnel.Evaluation;
using Funnel.Inference;
using Funnel.Retrieval;

namespace Funnel.Bench.Pipeline;

/// <summary>
/// End to end on BEIR NFCorpus: indexing throughput into a fresh collection, then per-stage query latency (p50/p95) for dense,
/// bm25 and hybrid first stages, and hybrid with cross-encoder reranking of the top 20 and top 100. The models are random-weight
/// MiniLM-L6s (SeededCheckpoint; the rankings are meaningless, the work is real) unless <c>--bi-encoder</c> / <c>--cross-encoder</c>
/// name real ones; <c>--precision</c> applies to both and <c>--rerank-tokens</c> caps the cross-encoder's pairs, so the
/// RAG-budget row (embed, hybrid retrieval, rerank of 20 pairs of at most 128 tokens) can be measured as deployed.
/// </summary>
internal static class PipelineSuite
{
    public const string Help = "collection + pipeline on NFCorpus: pipeline [--dataset nfcorpus.zip] [--queries 200] [--rerank-queries 20] [--batch-size 64] [--index hnsw|flat] [--bi-encoder seeded|ID|DIR] [--cross-encoder seeded|DIR] [--precision fp32|int8] [--rerank-tokens N]";

    public static int Run(string[] args)
    {
        var paths = Encoders.BenchPaths.Locate();
        string dataset = BenchArgs.Get(args, "--dataset", Path.Combine(paths.Shared, "datasets", "beir-nfcorpus", "nfcorpus.zip"));
        int queryCount = int.Parse(BenchArgs.Get(args, "--queries", "200"));
        int rerankQueries = int.Parse(BenchArgs.Get(args, "--rerank-queries", "20"));
        int batchSize = int.Parse(BenchArgs.Get(args, "--batch-size", "64"));
        var kind = BenchArgs.Get(args, "--index", "hnsw") == "flat" ? VectorIndexKind.Flat : VectorIndexKind.Hnsw;
        var precision = BenchArgs.Get(args, "--precision", "fp32") switch
        {
            "fp32" => InferencePrecision.Fp32,
            "int8" => InferencePrecision.Int8,
            var other => throw new FormatException($"--precision expects fp32 or int8, got '{other}'"),
        };
        int? rerankTokens = BenchArgs.Get(args, "--rerank-tokens", "") is { Length: > 0 } t ? int.Parse(t) : null;
        // By default the same seeded MiniLM-L6 checkpoints as the encoders suite, cached under .cache/bench.
        string biName = BenchArgs.Get(args, "--bi-encoder", "seeded"), crossName = BenchArgs.Get(args, "--cross-encoder", "seeded");
        string bi = biName == "seeded" ? paths.SeededModel("minilm-bi", "all-MiniLM-L6-v2", 1, crossEncoder: false)
            : Directory.Exists(biName) ? biName : Encoders.BenchPaths.ResolveModel(biName);
        string cross = crossName == "seeded" ? paths.SeededModel("minilm-ce", "ms-marco-MiniLM-L-6-v2", 2, crossEncoder: true) : crossName;
        string folder = Path.Combine(paths.Cache, "bench", "nfcorpus-collection");
        if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        using var biEncoder = SentenceEncoder.Load(bi, new EncoderOptions { Precision = precision });
        using var crossEncoder = CrossEncoder.Load(cross, new EncoderOptions { Precision = precision, MaxSequenceLength = rerankTokens });
        Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {System.Runtime.InteropServices.RuntimeInformation.OSArchitecture}, .NET {Environment.Version}; " +
                          $"bi-encoder {(biName == "seeded" ? "random-weight MiniLM-L6" : biName)} (max {biEncoder.MaxSequenceLength} tokens), " +
                          $"cross-encoder {(crossName == "seeded" ? "random-weight MiniLM-L6" : crossName)} (max {crossEncoder.MaxSequenceLength} tokens); " +
                          $"{precision.ToString().ToLowerInvariant()}; index {kind}; batch {batchSize}");

        // Indexing.
        long before = GC.GetTotalAllocatedBytes();
        var clock = Stopwatch.StartNew();
        IndexingProgress indexed;
        using (Collection created = Collection.Create(folder, biEncoder, new CollectionOptions { VectorIndex = new VectorIndexSettings { Kind = kind } }))
            indexed = CollectionIndexer.IndexAsync(created, biEncoder, CorpusReader.ReadAsync(dataset), new IndexingOptions { BatchSize = batchSize })
                .GetAwaiter().GetResult();
        double seconds = clock.Elapsed.TotalSeconds;
        Console.WriteLine($"indexing: {indexed.DocumentsWritten:N0} documents, {indexed.Chunks:N0} chunks in {seconds:F1} s = " +
                          $"{indexed.DocumentsWritten / seconds:F1} docs/s, {indexed.Chunks / seconds:F1} chunks/s; " +
                          $"allocated {(GC.GetTotalAllocatedBytes() - before) / 1e9:F2} GB; collection on disk {FolderBytes(folder) / 1e6:F1} MB");

        clock.Restart();
        using Collection collection = Collection.Open(folder, readOnly: true);
        Console.WriteLine($"open (read-only): {clock.Elapsed.TotalMilliseconds:F0} ms");

        // Queries: the test split's, in file order.
        List<(string Id, string Text)> queries;
        using (BeirDataset beir = BeirDataset.Open(dataset))
        {
            var judged = beir.ReadQrels("test").QueryIds.ToHashSet();
            queries = beir.ReadQueriesAsync().GetAwaiter().GetResult().Where(q => judged.Contains(q.Id)).Select(q => (q.Id, q.Text)).ToList();
        }
        var pipeline = new SearchPipeline(collection, biEncoder, crossEncoder);
        (string Name, SearchOptions Options, int Queries)[] configs =
        [
            ("dense", new SearchOptions { Retriever = Retriever.Dense, Rerank = false }, queryCount),
            ("bm25", new SearchOptions { Retriever = Retriever.Bm25, Rerank = false }, queryCount),
            ("hybrid", new SearchOptions { Retriever = Retriever.Hybrid, Rerank = false }, queryCount),
            ("hybrid + rerank N=20", new SearchOptions { Retriever = Retriever.Hybrid, Candidates = 20 }, rerankQueries),
            ("hybrid + rerank N=100", new SearchOptions { Retriever = Retriever.Hybrid, Candidates = 100 }, rerankQueries),
        ];
        Console.WriteLine();
        Console.WriteLine("| pipeline (M = 10) | queries | embed p50 / p95 | retrieve p50 / p95 | fuse p50 / p95 | rerank p50 / p95 | total p50 / p95 | QPS |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var (name, options, count) in configs)
        {
            foreach (var q in queries.Take(5)) pipeline.Search(q.Text, options); // warm-up (JIT, caches)
            var timings = new List<StageTimings>();
            clock.Restart();
            foreach (var q in queries.Take(count)) timings.Add(pipeline.Search(q.Text, options).Timings);
            double qps = timings.Count / clock.Elapsed.TotalSeconds;
            Console.WriteLine($"| {name} | {timings.Count} | {Percentiles(timings, t => t.Embed)} | {Percentiles(timings, t => t.Retrieve)} | " +
                              $"{Percentiles(timings, t => t.Fuse)} | {Percentiles(timings, t => t.Rerank)} | {Percentiles(timings, t => t.Total)} | {qps:F1} |");
        }
        Console.WriteLine($"peak working set: {Process.GetCurrentProcess().PeakWorkingSet64 / 1e6:F0} MB");
        return 0;
    }

    /// <summary>"p50 / p95" in milliseconds (nearest-rank percentiles).</summary>
    private static string Percentiles(List<StageTimings> timings, Func<StageTimings, TimeSpan> stage)
    {
        double[] ms = timings.Select(t => stage(t).TotalMilliseconds).Order().ToArray();
        double At(double p) => ms[Math.Clamp((int)Math.Ceiling(p * ms.Length) - 1, 0, ms.Length - 1)];
        return $"{At(0.50):F1} / {At(0.95):F1} ms";
    }

    private static long FolderBytes(string folder) => new DirectoryInfo(folder).EnumerateFiles("*", SearchOption.AllDirectories).Sum(f => f.Length);
}
