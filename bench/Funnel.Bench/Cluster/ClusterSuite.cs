using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Funnel.Cluster;
using Funnel.Cluster.Coordination;
using Funnel.Evaluation;
using Funnel.Inference;
using Funnel.Retrieval;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Funnel.Bench.Cluster;

/// <summary>
/// A functional scaling test of sharded collections: 1, 2 and 3 Funnel nodes (real Orleans silos on loopback in this
/// process, primary-node membership) holding one collection of 3 shards (R = 1 on one node, else R = 2), the same NFCorpus
/// documents as one local collection (the reference). Sequential searches from the coordinator on node 1 give latency,
/// QPS, scatter and gather; a local collection of one shard's size gives the per-shard cost, and the difference the fan-out
/// overhead. All nodes share this machine's cores, so more nodes add no compute: it shows the cost of the fan-out, not a speed-up.
/// </summary>
internal static class ClusterSuite
{
    public const string Help = "sharded collection on 1/2/3 nodes: cluster [--shared ../shared] [--documents 1000] [--queries 100] [--shards 3] [--small]";

    public static int Run(string[] args)
    {
        string shared = BenchArgs.Get(args, "--shared", Path.Combine(AppContext.BaseDirectory, "../../../../../../shared"));
        int documents = int.Parse(BenchArgs.Get(args, "--documents", "1000"));
        int queryCount = int.Parse(BenchArgs.Get(args, "--queries", "100"));
        int shards = int.Parse(BenchArgs.Get(args, "--shards", "3"));
        bool small = args.Contains("--small");

        using var dataset = BeirDataset.Open(Path.Combine(shared, "datasets", "beir-nfcorpus", "nfcorpus.zip"));
        List<Document> corpus = [.. dataset.ReadCorpusAsync().ToBlockingEnumerable().Take(documents)];
        List<string> queries = [.. dataset.ReadQueriesAsync().GetAwaiter().GetResult().Select(q => q.Text).Take(queryCount)];
        string root = Directory.CreateTempSubdirectory("funnel-bench-cluster-").FullName;
        try
        {
            string model = Path.Combine(root, "bi-encoder");
            SeededCheckpoint.Write(model, Path.Combine(shared, "models", "all-MiniLM-L6-v2"), 1,
                new SeededCheckpointOptions { Architecture = small ? CheckpointArchitecture.Small : CheckpointArchitecture.MiniLmL6 });
            using SentenceEncoder encoder = SentenceEncoder.Load(model);
            var options = new CollectionOptions { Chunking = new ChunkingOptions { MaxTokens = 128, OverlapTokens = 16 } };
            Console.WriteLine($"machine: {Environment.ProcessorCount} cores, .NET {Environment.Version}, load average {LoadAverage()}; {corpus.Count:N0} NFCorpus documents, " +
                $"{queries.Count} queries, {shards} shards, HNSW, seeded {(small ? "small (hidden 32)" : "MiniLM-L6-shaped (384 dims)")} bi-encoder, no rerank");

            // The reference and the per-shard cost: one local collection of everything, one of a shard's share.
            var embedded = new DocumentEmbedder(encoder, options.Chunking).Embed(corpus);
            using Collection whole = Collection.Create(Path.Combine(root, "whole"), encoder, options);
            whole.Upsert(embedded);
            using Collection part = Collection.Create(Path.Combine(root, "part"), encoder, options);
            part.Upsert([.. embedded.Where(d => ClusterLayout.ShardOf(d.Document.Id, shards) == 0)]);
            Console.WriteLine($"{"setup",-26} {"retriever",-7} {"p50 ms",8} {"p95 ms",8} {"QPS",7} {"scatter",8} {"gather",7}");
            foreach (Retriever retriever in new[] { Retriever.Dense, Retriever.Bm25, Retriever.Hybrid })
            {
                Report("one collection (all)", retriever, MeasureLocal(whole, encoder, queries, retriever));
                Report($"one shard's share ({part.DocumentCount})", retriever, MeasureLocal(part, encoder, queries, retriever));
            }

            foreach (int nodes in new[] { 1, 2, 3 })
                RunCluster(root, nodes, shards, nodes == 1 ? 1 : 2, encoder, options, corpus, queries).GetAwaiter().GetResult();
            return 0;
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private static async Task RunCluster(string root, int nodes, int shards, int replicas, SentenceEncoder encoder, CollectionOptions options,
        List<Document> corpus, List<string> queries)
    {
        int[] siloPorts = [.. Enumerable.Range(0, nodes).Select(_ => FreePort())];
        var hosts = new List<IHost>();
        try
        {
            for (int n = 0; n < nodes; n++)
            {
                HostApplicationBuilder builder = Host.CreateApplicationBuilder();
                builder.Logging.ClearProviders();
                builder.UseFunnelCluster(new FunnelClusterOptions
                {
                    NodeName = $"node{n + 1}", DataDirectory = Path.Combine(root, $"c{nodes}", $"node{n + 1}"), Membership = $"primary:127.0.0.1:{siloPorts[0]}",
                    SiloPort = siloPorts[n], GatewayPort = FreePort(), ClusterId = $"bench-{nodes}",
                }, encoder.Fingerprint);
                IHost host = builder.Build();
                await host.StartAsync();
                hosts.Add(host);
            }
            var cluster = new ClusterCollections(hosts[0].Services.GetRequiredService<IGrainFactory>(), encoder);
            await cluster.CreateAsync("bench", new ShardingOptions { Shards = shards, Replicas = replicas }, options);
            var ingest = Stopwatch.StartNew();
            foreach (Document[] batch in corpus.Chunk(64)) await cluster.UpsertAsync("bench", batch);
            double perSecond = corpus.Count / ingest.Elapsed.TotalSeconds;
            foreach (Retriever retriever in new[] { Retriever.Dense, Retriever.Bm25, Retriever.Hybrid })
            {
                var o = new SearchOptions { Retriever = retriever, Candidates = 100, Results = 10, Rerank = false };
                foreach (string q in queries.Take(10)) await cluster.SearchAsync("bench", q, o); // warm-up
                var latencies = new List<double>();
                TimeSpan scatter = default, gather = default;
                var wall = Stopwatch.StartNew();
                foreach (string q in queries)
                {
                    long start = Stopwatch.GetTimestamp();
                    SearchResponse r = await cluster.SearchAsync("bench", q, o);
                    latencies.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                    (scatter, gather) = (scatter + r.Timings.Scatter, gather + r.Timings.Gather);
                    if (r.Unsearched.Count > 0) throw new InvalidOperationException($"shards {string.Join(", ", r.Unsearched)} unsearched");
                }
                Report($"{nodes} node(s), {shards}×{replicas}", retriever, (latencies, wall.Elapsed, scatter / queries.Count, gather / queries.Count));
            }
            Console.WriteLine($"{nodes} node(s): ingest {perSecond:N0} documents/s (embedded by the coordinator, batches of 64, W = {ClusterLayout.Majority(replicas)})");
        }
        finally
        {
            foreach (IHost host in Enumerable.Reverse(hosts))
            {
                await host.StopAsync();
                host.Dispose();
            }
        }
    }

    private static (List<double>, TimeSpan, TimeSpan, TimeSpan) MeasureLocal(Collection collection, SentenceEncoder encoder, List<string> queries, Retriever retriever)
    {
        var pipeline = new SearchPipeline(collection, encoder);
        var o = new SearchOptions { Retriever = retriever, Candidates = 100, Results = 10, Rerank = false };
        foreach (string q in queries.Take(10)) pipeline.Search(q, o);
        var latencies = new List<double>();
        var wall = Stopwatch.StartNew();
        foreach (string q in queries)
        {
            long start = Stopwatch.GetTimestamp();
            pipeline.Search(q, o);
            latencies.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }
        return (latencies, wall.Elapsed, default, default);
    }

    private static void Report(string setup, Retriever retriever, (List<double> Latencies, TimeSpan Wall, TimeSpan Scatter, TimeSpan Gather) m) =>
        Console.WriteLine($"{setup,-26} {retriever.ToString().ToLowerInvariant(),-7} {Latency.Percentile(m.Latencies, 0.5),8:F2} {Latency.Percentile(m.Latencies, 0.95),8:F2} " +
            $"{m.Latencies.Count / m.Wall.TotalSeconds,7:F0} {m.Scatter.TotalMilliseconds,8:F2} {m.Gather.TotalMilliseconds,7:F2}");

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static string LoadAverage() => File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "?";
}
