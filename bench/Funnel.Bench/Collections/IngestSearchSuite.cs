using System.Diagnostics;
using Funnel.Evaluation;
using Funnel.Inference;
using Funnel.Retrieval;

namespace Funnel.Bench.Collections;

/// <summary>
/// Search latency while a collection ingests: dense (HNSW) and BM25 searches from <c>--searchers</c> threads, first on an idle
/// collection of <c>--initial</c> documents (the reference), then while <c>--documents</c> more are upserted in durable
/// batches of <c>--batch</c>. Documents are NFCorpus texts (fresh ids past the corpus) with seeded random unit vectors, one
/// chunk each, so the numbers measure the collection (log, BM25 analysis, HNSW insert, locks), not a bi-encoder.
/// </summary>
internal static class IngestSearchSuite
{
    public const string Help = "search p99 while ingesting: ingest-search [--shared ../shared] [--documents 10000] [--initial 2000] [--batch 64] [--searchers 2] [--dim 384]";

    public static int Run(string[] args)
    {
        string shared = BenchArgs.Get(args, "--shared", Path.Combine(AppContext.BaseDirectory, "../../../../../../shared"));
        int documents = int.Parse(BenchArgs.Get(args, "--documents", "10000"));
        int initial = int.Parse(BenchArgs.Get(args, "--initial", "2000"));
        int batch = int.Parse(BenchArgs.Get(args, "--batch", "64"));
        int searchers = int.Parse(BenchArgs.Get(args, "--searchers", "2"));
        int dimension = int.Parse(BenchArgs.Get(args, "--dim", "384"));

        using var dataset = BeirDataset.Open(Path.Combine(shared, "datasets", "beir-nfcorpus", "nfcorpus.zip"));
        List<Document> corpus = [.. dataset.ReadCorpusAsync().ToBlockingEnumerable()];
        List<string> queries = [.. dataset.ReadQueriesAsync().GetAwaiter().GetResult().Select(q => q.Text)];
        var random = new Random(17);
        EmbeddedDocument Make(int i)
        {
            Document source = corpus[i % corpus.Count];
            return new EmbeddedDocument(source with { Id = $"{source.Id}#{i}" }, [new ChunkSpan(0, source.FullText.Length)], [UnitVector(random, dimension)]);
        }
        float[][] queryVectors = [.. Enumerable.Range(0, 256).Select(_ => UnitVector(random, dimension))];
        Console.WriteLine($"machine: {Environment.ProcessorCount} cores, .NET {Environment.Version}, load average {LoadAverage()}; " +
            $"{initial:N0} documents, then {documents:N0} more in batches of {batch}; {searchers} searcher threads; dim {dimension}");

        string folder = Path.Combine(Path.GetTempPath(), $"funnel-bench-ingest-{Guid.NewGuid():N}");
        var fingerprint = new ModelFingerprint("bench", new string('0', 64), dimension, "mean", Normalize: true);
        try
        {
            using var collection = Collection.Create(folder, fingerprint, new CollectionOptions { Chunking = new ChunkingOptions() });
            for (int i = 0; i < initial; i += batch)
                collection.Upsert([.. Enumerable.Range(i, Math.Min(batch, initial - i)).Select(Make)]);
            var pending = Enumerable.Range(initial, documents).Select(Make).Chunk(batch).ToList(); // made up front: only the upserts are timed

            (List<double> Dense, List<double> Bm25) idle = Measure(collection, queries, queryVectors, searchers, () => Thread.Sleep(TimeSpan.FromSeconds(5)));
            Report("idle", idle);
            var ingest = Stopwatch.StartNew();
            (List<double> Dense, List<double> Bm25) busy = Measure(collection, queries, queryVectors, searchers, () =>
            {
                foreach (EmbeddedDocument[] slice in pending) collection.Upsert(slice);
            });
            double seconds = ingest.Elapsed.TotalSeconds;
            Report("ingesting", busy);
            Console.WriteLine($"ingest: {documents / seconds:N0} documents/s ({seconds:F1} s, fsynced batches); " +
                $"p99 ratio ingesting/idle: dense {Latency.Percentile(busy.Dense, 0.99) / Latency.Percentile(idle.Dense, 0.99):F1}×, " +
                $"bm25 {Latency.Percentile(busy.Bm25, 0.99) / Latency.Percentile(idle.Bm25, 0.99):F1}×");
            if (collection.DocumentCount != initial + documents) throw new InvalidOperationException($"{collection.DocumentCount} documents stored");
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
        return 0;
    }

    /// <summary>Searches from <paramref name="threads"/> threads until <paramref name="work"/> returns; latencies in ms.</summary>
    private static (List<double> Dense, List<double> Bm25) Measure(Collection collection, List<string> queries, float[][] vectors, int threads, Action work)
    {
        using var stop = new CancellationTokenSource();
        var dense = new List<double>[threads];
        var bm25 = new List<double>[threads];
        Thread[] searchers = [.. Enumerable.Range(0, threads).Select(t => new Thread(() =>
        {
            (dense[t], bm25[t]) = ([], []);
            for (int i = t; !stop.IsCancellationRequested; i += threads)
            {
                long start = Stopwatch.GetTimestamp();
                collection.SearchDense(vectors[i % vectors.Length], 10);
                dense[t].Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                start = Stopwatch.GetTimestamp();
                collection.SearchBm25(queries[i % queries.Count], 10);
                bm25[t].Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
            }
        }))];
        foreach (Thread searcher in searchers) searcher.Start();
        try
        {
            work();
        }
        finally
        {
            stop.Cancel();
            foreach (Thread searcher in searchers) searcher.Join();
        }
        return ([.. dense.SelectMany(d => d)], [.. bm25.SelectMany(b => b)]);
    }

    private static void Report(string phase, (List<double> Dense, List<double> Bm25) latencies)
    {
        foreach (var (name, values) in new[] { ("dense", latencies.Dense), ("bm25", latencies.Bm25) })
            Console.WriteLine($"{phase,-10} {name,-6} {values.Count,7:N0} searches: p50 {Latency.Percentile(values, 0.5):F2} ms, " +
                $"p99 {Latency.Percentile(values, 0.99):F2} ms, max {values.Max():F1} ms");
    }

    private static float[] UnitVector(Random random, int dimension)
    {
        var v = new float[dimension];
        double norm = 0;
        for (int i = 0; i < dimension; i++) norm += (v[i] = (float)(random.NextDouble() * 2 - 1)) * v[i];
        float scale = (float)(1 / Math.Sqrt(norm));
        for (int i = 0; i < dimension; i++) v[i] *= scale;
        return v;
    }

    private static string LoadAverage() => File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "?";
}
