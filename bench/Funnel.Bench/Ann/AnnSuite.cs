using System.Diagnostics;
using System.Text.Json;
using Funnel.Index;
using Funnel.Numerics;

namespace Funnel.Bench.Ann;

/// <summary>
/// Recall@10 against QPS for HNSW at several efSearch values, against exact search, on the fiori MiniLM vectors
/// (shipped exact top-10) or on synthetic clustered data: 100 centres ~ N(0, I), point = centre + 1.5·N(0, I),
/// L2-normalised, queries from the same mixture, ground truth = exact inner-product top-10 (FlatIndex).
/// </summary>
internal static class AnnSuite
{
    public const string Help = "ANN recall/QPS: ann [--data fiori|synthetic|nfcorpus] [--usearch true] [--n 100000] [--dim 384] [--queries 1000] [--m 16] [--efc 200] [--ef 10,20,40,80,160] [--threads 2] [--repeat 3] [--quant none|int8] [--save PATH | --load PATH] [--hnswlib bench/hnswlib]";

    public static int Run(string[] args)
    {
        string data = BenchArgs.Get(args, "--data", "synthetic");
        int n = int.Parse(BenchArgs.Get(args, "--n", "100000"));
        int dim = int.Parse(BenchArgs.Get(args, "--dim", "384"));
        int nq = int.Parse(BenchArgs.Get(args, "--queries", "1000"));
        int m = int.Parse(BenchArgs.Get(args, "--m", "16"));
        int efc = int.Parse(BenchArgs.Get(args, "--efc", "200"));
        int threads = int.Parse(BenchArgs.Get(args, "--threads", Environment.ProcessorCount.ToString()));
        var efs = BenchArgs.Get(args, "--ef", "10,20,40,80,160").Split(',').Select(int.Parse).ToArray();
        var quant = BenchArgs.Get(args, "--quant", "none") == "int8" ? VectorQuantization.Int8 : VectorQuantization.None;
        int repeat = int.Parse(BenchArgs.Get(args, "--repeat", "3"));
        string? save = BenchArgs.Get(args, "--save", "") is { Length: > 0 } s ? s : null;
        string? load = BenchArgs.Get(args, "--load", "") is { Length: > 0 } l ? l : null;
        string? hnswlib = BenchArgs.Get(args, "--hnswlib", "") is { Length: > 0 } h ? h : null;
        bool usearch = BenchArgs.Get(args, "--usearch", "true") == "true";
        string shared = BenchArgs.Get(args, "--shared", Path.Combine(AppContext.BaseDirectory, "../../../../../../shared"));

        float[][] points, queries;
        long[][]? truth = null;
        bool selfExcluded = false;
        if (data == "fiori")
        {
            (points, truth) = LoadFiori(shared);
            queries = points;
            selfExcluded = true;
        }
        else if (data == "nfcorpus")
        {
            (points, queries) = NfCorpusVectors.Load(shared);
        }
        else
        {
            var sw0 = Stopwatch.StartNew();
            points = Synthetic(n, dim, seed: 1);
            queries = Synthetic(nq, dim, seed: 2);
            Console.WriteLine($"generated {points.Length:N0} x {dim} + {queries.Length:N0} queries in {sw0.Elapsed.TotalSeconds:F1} s");
        }
        dim = points[0].Length;
        Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {System.Runtime.InteropServices.RuntimeInformation.OSArchitecture}, .NET {Environment.Version}; data={data} n={points.Length:N0} d={dim} queries={queries.Length:N0} M={m} efC={efc} threads={threads} quant={quant}");

        int k = 10, kq = selfExcluded ? 11 : 10;
        using var flat = new FlatIndex(dim, DistanceMetric.DotProduct);
        flat.AddBatch(points.Select((v, i) => new VectorRecord(i, v)).ToList());
        // Exact QPS on up to 200 queries on one thread; the ground truth for all queries on every core.
        var timed = queries.Take(200).ToList();
        var exactCpu = Process.GetCurrentProcess().TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        flat.SearchBatch(timed, kq, maxThreads: 1);
        double exactQps = timed.Count / sw.Elapsed.TotalSeconds;
        double exactQpsCpu = timed.Count / (Process.GetCurrentProcess().TotalProcessorTime - exactCpu).TotalSeconds;
        truth ??= flat.SearchBatch(queries, kq).Select(h => h.Select(x => x.Id).Take(k).ToArray()).ToArray();
        Console.WriteLine($"exact (FlatIndex, 1 thread): {exactQps:N0} QPS ({exactQpsCpu:N0} per CPU-second)");

        if (hnswlib is not null) RunHnswlib(hnswlib, points, queries, truth, m, efc, efs, selfExcluded);

        HnswIndex index;
        double? buildSeconds = null;
        if (load is not null)
        {
            sw.Restart();
            index = HnswIndex.Load(load);
            if (index.Count != points.Length || index.Dimension != dim)
                throw new InvalidOperationException($"{load} holds {index.Count:N0} x {index.Dimension} vectors; this run generated {points.Length:N0} x {dim}");
            Console.WriteLine($"HNSW loaded from {load} in {sw.Elapsed.TotalSeconds:F1} s (M={index.Options.M}, efC={index.Options.EfConstruction}; build not timed)");
        }
        else
        {
            index = new HnswIndex(dim, DistanceMetric.DotProduct, new HnswOptions { M = m, EfConstruction = efc, Quantization = quant });
            var records = points.Select((v, i) => new VectorRecord(i, v)).ToList();
            var buildCpu = Process.GetCurrentProcess().TotalProcessorTime;
            sw.Restart();
            index.AddBatch(records, threads);
            double build = sw.Elapsed.TotalSeconds;
            buildSeconds = build;
            buildCpu = Process.GetCurrentProcess().TotalProcessorTime - buildCpu;
            Console.WriteLine($"HNSW build: {build:F1} s on {threads} threads ({buildCpu.TotalSeconds:F1} CPU-seconds)");
        }
        using var disposeIndex = index;
        var mem = index.Memory;
        Console.WriteLine($"memory: {mem.BytesPerVector:F0} bytes/vector total " +
            $"(vectors {mem.VectorBytes / (double)mem.Count:F0}, graph+ids {mem.GraphBytes / (double)mem.Count:F0}, full-precision {mem.FullPrecisionBytes / (double)mem.Count:F0}, id map {mem.IdMapBytes / (double)mem.Count:F0}); hnswlib formula 4d+8M+12 = {4 * dim + 8 * index.Options.M + 12}");
        if (save is not null)
        {
            sw.Restart();
            index.Save(save);
            Console.WriteLine($"saved {new FileInfo(save).Length / 1e6:F1} MB in {sw.Elapsed.TotalSeconds:F1} s");
        }

        Console.WriteLine("| efSearch | recall@10 | QPS 1 thread | QPS per CPU-second | QPS 2 threads | speed-up vs exact |");
        Console.WriteLine("|---:|---:|---:|---:|---:|---:|");
        var curve = new List<SweepPoint>();
        foreach (int ef in efs)
        {
            index.EfSearch = ef;
            index.SearchBatch(queries, kq, maxThreads: 1); // warm-up, long enough for tiered JIT to finish
            // Median of several passes: one pass of 1,000 queries lasts a fraction of a second, so one pass is noisy.
            var qps1 = new double[repeat];
            var qpsCpu = new double[repeat];
            var qps2 = new double[repeat];
            IReadOnlyList<VectorHit>[] found = [];
            for (int r = 0; r < repeat; r++)
            {
                var cpu = Process.GetCurrentProcess().TotalProcessorTime;
                sw.Restart();
                found = index.SearchBatch(queries, kq, maxThreads: 1);
                qps1[r] = queries.Length / sw.Elapsed.TotalSeconds;
                qpsCpu[r] = queries.Length / (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds;
                sw.Restart();
                index.SearchBatch(queries, kq, maxThreads: 2);
                qps2[r] = queries.Length / sw.Elapsed.TotalSeconds;
            }
            var trimmed = found.Select((h, i) => (IReadOnlyList<VectorHit>)(selfExcluded ? h.Where(x => x.Id != i) : h).Take(k).ToList()).ToList();
            double recall = Recall(truth, trimmed);
            Console.WriteLine($"| {ef} | {recall:F4} | {Median(qps1):N0} | {Median(qpsCpu):N0} | {Median(qps2):N0} | {Median(qps1) / exactQps:N0}x |");
            curve.Add(new SweepPoint(ef, recall, Median(qps1), Median(qps2)));
        }
        if (usearch)
            CompareWithUSearch(points, queries, truth, kq, k, selfExcluded, m, efc, efs, threads, repeat, quant == VectorQuantization.Int8,
                curve, buildSeconds, mem.BytesPerVector);
        return 0;
    }

    private sealed record SweepPoint(int Ef, double Recall, double Qps1, double Qps2);

    /// <summary>
    /// USearch on the same data, M, efConstruction, threads and quantization: build time, bytes per vector, and per efSearch its
    /// recall and QPS beside Funnel's QPS at the same recall (interpolated on Funnel's curve, log-QPS linear in recall).
    /// </summary>
    private static void CompareWithUSearch(float[][] points, float[][] queries, long[][] truth, int kq, int k, bool selfExcluded, int m, int efc,
        int[] efs, int threads, int repeat, bool int8, List<SweepPoint> funnel, double? funnelBuild, double funnelBytes)
    {
        using var anchor = new USearchAnchor(points[0].Length, int8, m, efc);
        double build = anchor.Build(points, threads);
        Console.WriteLine();
        Console.WriteLine($"USearch {anchor.Version} ({(int8 ? "i8, cos" : "f32, ip")}, connectivity {m}, expansion_add {efc}, SIMD {anchor.Acceleration}): build {build:F1} s on {threads} threads" +
            (funnelBuild is { } fb ? $" (Funnel {fb:F1} s: {build / fb:F2}× Funnel's time)" : "") +
            $"; {anchor.BytesPerVector(points.Length):F0} bytes/vector (Funnel {funnelBytes:F0})");
        Console.WriteLine("| efSearch | USearch recall@10 | USearch QPS 1 thread | USearch QPS 2 threads | Funnel QPS 1 thread at equal ef | Funnel QPS 1 thread at USearch's recall | Funnel / USearch at equal recall |");
        Console.WriteLine("|---:|---:|---:|---:|---:|---:|---:|");
        var sw = new Stopwatch();
        foreach (int ef in efs)
        {
            anchor.EfSearch = ef;
            foreach (var q in queries) anchor.Search(q, kq); // warm-up
            var qps1 = new double[repeat];
            var qps2 = new double[repeat];
            var found = new long[queries.Length][];
            for (int r = 0; r < repeat; r++)
            {
                sw.Restart();
                for (int i = 0; i < queries.Length; i++) found[i] = anchor.Search(queries[i], kq);
                qps1[r] = queries.Length / sw.Elapsed.TotalSeconds;
                sw.Restart();
                Parallel.For(0, queries.Length, new ParallelOptions { MaxDegreeOfParallelism = 2 }, i => anchor.Search(queries[i], kq));
                qps2[r] = queries.Length / sw.Elapsed.TotalSeconds;
            }
            var trimmed = found.Select((ids, i) => (IReadOnlyList<VectorHit>)(selfExcluded ? ids.Where(id => id != i) : ids).Take(k)
                .Select(id => new VectorHit(id, 0)).ToList()).ToList();
            double recall = Recall(truth, trimmed);
            double? atRecall = QpsAtRecall(funnel, recall);
            string equalEf = funnel.FirstOrDefault(p => p.Ef == ef) is { } same ? same.Qps1.ToString("N0") : "–";
            Console.WriteLine($"| {ef} | {recall:F4} | {Median(qps1):N0} | {Median(qps2):N0} | {equalEf} | " +
                $"{(atRecall is { } a ? a.ToString("N0") : "outside Funnel's sweep")} | {(atRecall is { } b ? $"{b / Median(qps1):F2}×" : "–")} |");
        }
    }

    /// <summary>Funnel's 1-thread QPS at <paramref name="recall"/> on its measured curve, or null outside it.</summary>
    private static double? QpsAtRecall(List<SweepPoint> curve, double recall)
    {
        var sorted = curve.OrderBy(p => p.Recall).ToList();
        for (int i = 0; i + 1 < sorted.Count; i++)
        {
            var (lo, hi) = (sorted[i], sorted[i + 1]);
            if (recall < lo.Recall || recall > hi.Recall) continue;
            double t = hi.Recall == lo.Recall ? 0 : (recall - lo.Recall) / (hi.Recall - lo.Recall);
            return Math.Exp(Math.Log(lo.Qps1) + t * (Math.Log(hi.Qps1) - Math.Log(lo.Qps1)));
        }
        return sorted.Count > 0 && Math.Abs(sorted[^1].Recall - recall) < 1e-9 ? sorted[^1].Qps1 : null;
    }

    /// <summary>Runs hnswlib (npm hnswlib-node, built from source) on the same data as a live anchor.</summary>
    private static void RunHnswlib(string dir, float[][] points, float[][] queries, long[][] truth, int m, int efc, int[] efs, bool selfExcluded)
    {
        if (selfExcluded)
        {
            Console.WriteLine("hnswlib anchor: skipped for self-excluded ground truth");
            return;
        }
        string file = Path.Combine(Path.GetTempPath(), $"funnel-ann-{Environment.ProcessId}.bin");
        try
        {
            using (var w = new BinaryWriter(File.Create(file)))
            {
                int dim = points[0].Length, k = truth[0].Length;
                w.Write(points.Length); w.Write(queries.Length); w.Write(dim); w.Write(k);
                foreach (var p in points) foreach (float x in p) w.Write(x);
                foreach (var q in queries) foreach (float x in q) w.Write(x);
                foreach (var t in truth) foreach (long id in t) w.Write((int)id);
            }
            var psi = new ProcessStartInfo("node", [Path.Combine(Path.GetFullPath(dir), "anchor.cjs"), file, m.ToString(), efc.ToString(), string.Join(',', efs)])
            {
                RedirectStandardOutput = true,
                WorkingDirectory = Path.GetFullPath(dir),
            };
            using var node = Process.Start(psi) ?? throw new InvalidOperationException("could not start node");
            Console.WriteLine("hnswlib anchor (hnswlib-node 3.0.0, same data, M/efC as ours, build single-threaded):");
            Console.WriteLine("| efSearch | recall@10 | QPS 1 thread | QPS per CPU-second |");
            Console.WriteLine("|---:|---:|---:|---:|");
            while (node.StandardOutput.ReadLine() is { } line)
            {
                using var doc = JsonDocument.Parse(line);
                var r = doc.RootElement;
                if (r.TryGetProperty("build_s", out var b)) Console.WriteLine($"hnswlib build: {b.GetDouble():F1} s on 1 thread ({r.GetProperty("build_cpu_s").GetDouble():F1} CPU-seconds)");
                else Console.WriteLine($"| {r.GetProperty("ef").GetInt32()} | {r.GetProperty("recall").GetDouble():F4} | {r.GetProperty("qps").GetDouble():N0} | {r.GetProperty("qps_cpu").GetDouble():N0} |");
            }
            node.WaitForExit();
        }
        finally { File.Delete(file); }
    }

    private static double Median(double[] values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    private static double Recall(long[][] truth, List<IReadOnlyList<VectorHit>> found)
    {
        double sum = 0;
        for (int i = 0; i < truth.Length; i++)
        {
            var set = found[i].Select(h => h.Id).ToHashSet();
            sum += truth[i].Count(set.Contains) / (double)truth[i].Length;
        }
        return sum / truth.Length;
    }

    /// <summary>The task's mixture: 100 centres ~ N(0, I); point = centre + 1.5·N(0, I), L2-normalised.
    /// Centres come from seed 0 so points and queries share them.</summary>
    internal static float[][] Synthetic(int n, int dim, int seed)
    {
        var centreRng = new Random(0);
        var centres = Enumerable.Range(0, 100).Select(_ => Gaussian(centreRng, dim, 1)).ToArray();
        var result = new float[n][];
        Parallel.For(0, (n + 9999) / 10000, block =>
        {
            var rng = new Random(seed * 1_000_003 + block);
            for (int i = block * 10000; i < Math.Min(n, (block + 1) * 10000); i++)
            {
                var c = centres[rng.Next(100)];
                var p = Gaussian(rng, dim, 1.5f);
                for (int j = 0; j < dim; j++) p[j] += c[j];
                VectorMath.Normalize(p);
                result[i] = p;
            }
        });
        return result;
    }

    private static float[] Gaussian(Random rng, int dim, float sigma)
    {
        var v = new float[dim];
        for (int j = 0; j < dim; j++)
            v[j] = (float)(sigma * Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
        return v;
    }

    private static (float[][], long[][]) LoadFiori(string shared)
    {
        string dir = Path.Combine(shared, "datasets", "fiori-docs-embeddings-minilm");
        var bytes = File.ReadAllBytes(Path.Combine(dir, "embeddings.bin"));
        int n = bytes.Length / (384 * 4);
        var vectors = new float[n][];
        for (int i = 0; i < n; i++) { vectors[i] = new float[384]; Buffer.BlockCopy(bytes, i * 384 * 4, vectors[i], 0, 384 * 4); }
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "knn_exact_cosine_top10.json")));
        var truth = doc.RootElement.GetProperty("results").EnumerateArray()
            .Select(r => r.GetProperty("neighbors").EnumerateArray().Select(x => x.GetInt64()).ToArray()).ToArray();
        return (vectors, truth);
    }
}
