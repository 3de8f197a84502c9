using System.Diagnostics;
using System.Runtime.Intrinsics.X86;
using StringBuilder = System.Text.StringBuilder;
using Funnel.Inference;
using Microsoft.ML.OnnxRuntime;
using Encoding = Funnel.Tokenization.Encoding;

namespace Funnel.Bench.Encoders;

/// <summary>
/// MiniLM-L6 bi-encoder and cross-encoder throughput, ours against ONNX Runtime .NET in this process on the same
/// ONNX weights, at the same shapes and thread counts. The bi-encoder is the seeded random-weight model and its
/// export, or a real model folder (<c>--model</c>); the cross-encoder is always the seeded one (no pretrained
/// cross-encoder is available here). Our side goes through the public API from text (tokenization included);
/// ONNX Runtime gets the token ids our tokenizer produced for the same texts, converted to tensors beforehand.
/// </summary>
internal static class EncoderBench
{
    // MiniLM-L6 (all-MiniLM-L6-v2 / ms-marco-MiniLM-L-6-v2): what the FLOP count assumes.
    private const int Layers = 6, Hidden = 384, Intermediate = 1536;
    private const int BiSeed = 1, CrossSeed = 2; // the seeds of tools/reference/bert_reference.py's minilm-bi / minilm-ce
    private const int Warmup = 2, DistinctBatches = 3;
    private const int QueryTokens = 16; // one search query, batch 1, one thread: the latency a search waits for

    private sealed record Measurement(double[] LatenciesMs, double PeakMiB, double CpuMsPerBatch)
    {
        public double Percentile(double p) => Latency.Percentile(LatenciesMs, p);

        public double PerSecond(int batch) => batch * 1000.0 / LatenciesMs.Average();
    }

    private sealed record Row(bool Cross, int Tokens, int Batch, int Threads);

    public static int Run(EncoderSuite.Options options)
    {
        BenchPaths paths = BenchPaths.Locate();
        (string biDir, string biOnnx) = paths.BiEncoder(options.Model, BiSeed);
        string crossDir = paths.SeededModel("minilm-ce", "ms-marco-MiniLM-L-6-v2", CrossSeed, crossEncoder: true);
        // The seeded cross-encoder's ONNX export needs PyTorch; without it ONNX Runtime runs the bi-encoder's graph at the
        // cross-encoder's shapes: the same six layers, less the pooler and one-logit head (under 0.1 % of the FLOPs).
        string? crossOnnx = paths.CrossOnnxIfAvailable();

        double ghz = MeasureGigahertz();
        int flopsPerCycle = Avx512F.IsSupported ? 64 : Fma.IsSupported ? 32 : 8;
        Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {CpuName()}; clock measured {ghz:F2} GHz (dependent-add chain); " +
                          $"fp32 peak assumed {flopsPerCycle} FLOP/cycle/core (2 FMA pipes × {flopsPerCycle / 4} lanes) = {ghz * flopsPerCycle:F0} GFLOP/s per core; " +
                          $"load average at start {LoadAverage()}");
        Console.WriteLine($"bi-encoder: {(options.Model == "seeded" ? "seeded random weights (all-MiniLM-L6-v2 shape)" : biDir)}; ONNX Runtime {OrtBert.Version} fp32 in this process");
        Console.WriteLine($"cross-encoder ONNX Runtime anchor: {(crossOnnx is null ? "the bi-encoder's graph at the same shapes (no PyTorch here to export the seeded cross-encoder)" : crossOnnx)}");
        Console.WriteLine($"Funnel precisions: {string.Join(", ", options.Precisions.Select(Name))}; each row's ratio is against the ONNX Runtime fp32 measurement of the same row");
        Console.WriteLine($"{options.Iterations} × 32 / batch timed batches after {Warmup} warm-up; FLOPs = linear layers + attention (Q·Kᵀ, P·V)");
        Console.WriteLine();
        Console.WriteLine("| model | tokens | batch | threads | precision | Funnel seq/s | ORT fp32 seq/s | ratio | Funnel p50 / p95 / p99 ms | ORT p50 / p95 / p99 ms | Funnel GOP/s (% fp32 peak) | ORT GFLOP/s | Funnel / ORT CPU ms per batch | Funnel / ORT peak RSS MiB | max abs diff to ORT |");
        Console.WriteLine("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        var rng = new Random(42);
        foreach (Row row in Rows(options))
        {
            var batches = Enumerable.Range(0, DistinctBatches).Select(_ => MakeInputs(rng, row.Batch, row.Cross, row.Tokens)).ToArray();
            int iterations = Math.Max(options.Iterations, options.Iterations * 32 / row.Batch); // as many sequences per row at any batch
            var ours = new List<(InferencePrecision Precision, Measurement Time, float[][] First)>();
            Encoding[][] encoded = [];
            PoolingMode pooling = PoolingMode.Mean;
            bool normalize = true;
            foreach (InferencePrecision precision in options.Precisions)
            {
                var encoderOptions = new EncoderOptions { BatchSize = row.Batch, MaxThreads = row.Threads, MaxSequenceLength = row.Tokens, Precision = precision };
                ResetPeakWorkingSet();
                if (row.Cross)
                {
                    using var model = CrossEncoder.Load(crossDir, encoderOptions);
                    encoded = batches.Select(b => b.Pairs.Select(p => model.Tokenizer.EncodePair(p.Query, p.Document, row.Tokens)).ToArray()).ToArray();
                    float[][] first = model.Score(batches[0].Pairs).Select(s => new[] { s }).ToArray();
                    ours.Add((precision, Time(iterations, i => model.Score(batches[i % DistinctBatches].Pairs)), first));
                }
                else
                {
                    using var model = SentenceEncoder.Load(biDir, encoderOptions);
                    (pooling, normalize) = (model.Pooling, model.Normalize);
                    encoded = batches.Select(b => b.Texts.Select(t => model.Tokenizer.Encode(t, row.Tokens)).ToArray()).ToArray();
                    float[][] first = model.Encode(batches[0].Texts);
                    ours.Add((precision, Time(iterations, i => model.Encode(batches[i % DistinctBatches].Texts)), first));
                }
            }
            if (encoded.SelectMany(b => b).Any(e => e.Length != row.Tokens))
                throw new InvalidOperationException($"bench inputs did not fill {row.Tokens} tokens");

            ResetPeakWorkingSet();
            Measurement theirs;
            float[][]? theirFirst;
            using (SessionOptions sessionOptions = OrtBert.Options(row.Threads))
            using (var ort = new OrtBert(row.Cross ? crossOnnx ?? biOnnx : biOnnx, sessionOptions))
            {
                OrtBert.Feed[] feeds = encoded.Select(b => new OrtBert.Feed(b.Select(e => e.InputIds).ToArray(), b.Select(e => e.TokenTypeIds).ToArray())).ToArray();
                theirFirst = !row.Cross ? ort.Embed(feeds[0], pooling, normalize)
                    : crossOnnx is null ? null : ort.Run(feeds[0]).Select(s => new[] { s }).ToArray();
                theirs = Time(iterations, i => ort.Run(feeds[i % DistinctBatches]));
                foreach (OrtBert.Feed feed in feeds) feed.Dispose();
            }

            double gflop = FlopsPerSequence(row.Tokens) * row.Batch / 1e9;
            double ortGflops = gflop * 1000 / theirs.LatenciesMs.Average();
            double peak = ghz * flopsPerCycle * row.Threads;
            string name = row.Cross ? "cross-encoder" : row.Batch == 1 && row.Tokens == QueryTokens && row.Threads == 1 ? "bi-encoder (query)" : "bi-encoder";
            foreach (var (precision, time, first) in ours)
            {
                string diff = theirFirst is null ? "n/a"
                    : first.Zip(theirFirst).Max(p => p.First.Zip(p.Second).Max(v => Math.Abs(v.First - v.Second))).ToString("E1");
                double ourGflops = gflop * 1000 / time.LatenciesMs.Average();
                Console.WriteLine($"| {name} | {row.Tokens} | {row.Batch} | {row.Threads} | {Name(precision)} | {time.PerSecond(row.Batch):F1} | {theirs.PerSecond(row.Batch):F1} | " +
                                  $"{time.PerSecond(row.Batch) / theirs.PerSecond(row.Batch):F2} | {Percentiles(time)} | {Percentiles(theirs)} | " +
                                  $"{ourGflops:F0} ({100 * ourGflops / peak:F0}%) | {ortGflops:F0} | {time.CpuMsPerBatch:F1} / {theirs.CpuMsPerBatch:F1} | " +
                                  $"{time.PeakMiB:F0} / {theirs.PeakMiB:F0} | {diff} |");
            }
        }
        Console.WriteLine();
        Console.WriteLine($"ONNX Runtime .NET {OrtBert.Version} (CPU, fp32), intra_op_num_threads = threads, inter_op 1, sequential execution, graph optimisation level " +
                          "ORT_ENABLE_ALL (its default); its inputs are tensors made before timing, so its column excludes tokenization, ours includes it. " +
                          "Peak RSS is the process's VmHWM from a reset before each side's load to the end of its timing (shared runtime included). " +
                          "Max abs diff compares the first batch's outputs (bi-encoder: pooled, normalised embeddings; cross-encoder: logits); int8's is its quantization error. " +
                          "CPU ms per batch is process CPU time (ONNX Runtime's pool threads spin while waiting, which inflates its figure above 1 thread). " +
                          $"The {QueryTokens}-token query row's goal is p50 ≤ 3 ms; 100 cross-encoder pairs of 128 tokens on 2 threads: < 300 ms (batch 100 row).");
        return 0;
    }

    private static string Name(InferencePrecision precision) => precision.ToString().ToLowerInvariant();

    private static string LoadAverage()
    {
        try
        {
            return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "unknown";
        }
    }

    /// <summary>The bi-encoder at every shape, the query row, then the cross-encoder (pairs of at least 128 tokens).</summary>
    private static IEnumerable<Row> Rows(EncoderSuite.Options options)
    {
        var rows = new List<Row>();
        foreach (int seq in options.SeqLengths)
            foreach (int batch in options.Batches)
                rows.AddRange(options.Threads.Select(t => new Row(false, seq, batch, t)));
        rows.Add(new Row(false, QueryTokens, 1, 1));
        int[] crossLengths = options.SeqLengths.Where(l => l >= 128).DefaultIfEmpty(options.SeqLengths.Max()).ToArray();
        foreach (int seq in crossLengths)
            foreach (int batch in options.Batches)
                rows.AddRange(options.Threads.Select(t => new Row(true, seq, batch, t)));
        return rows.Distinct();
    }

    private static string Percentiles(Measurement m) => $"{m.Percentile(0.5):F2} / {m.Percentile(0.95):F2} / {m.Percentile(0.99):F2}";

    /// <summary>2·(QKV + output + two FFN matrices) per token plus 2·2·L²·hidden for Q·Kᵀ and P·V, per layer.</summary>
    internal static double FlopsPerSequence(int length) =>
        Layers * (2.0 * length * (4.0 * Hidden * Hidden + 2.0 * Hidden * Intermediate) + 4.0 * length * length * Hidden);

    /// <summary>Frees the previous configuration's model and restarts the kernel's peak-RSS counter
    /// (VmHWM) so each row reports its own peak; where that is not allowed the peak is cumulative.</summary>
    private static void ResetPeakWorkingSet()
    {
        System.Runtime.GCSettings.LargeObjectHeapCompactionMode = System.Runtime.GCLargeObjectHeapCompactionMode.CompactOnce;
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Not Linux, or not permitted: the working-set column is then the process's peak so far.
        }
    }

    private static Measurement Time(int iterations, Action<int> run)
    {
        for (int i = 0; i < Warmup; i++) run(i);
        var latencies = new double[iterations];
        using var self = Process.GetCurrentProcess();
        TimeSpan cpu0 = self.TotalProcessorTime;
        for (int i = 0; i < iterations; i++)
        {
            long start = Stopwatch.GetTimestamp();
            run(i);
            latencies[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }
        self.Refresh();
        return new Measurement(latencies, self.PeakWorkingSet64 / (double)(1 << 20), (self.TotalProcessorTime - cpu0).TotalMilliseconds / iterations);
    }

    private sealed record Inputs(string[] Texts, (string Query, string Document)[] Pairs);

    /// <summary>Texts just long enough that truncation to the measured length fills every sequence
    /// (each word is at least one token), so tokenizing the surplus costs next to nothing.</summary>
    private static Inputs MakeInputs(Random rng, int batch, bool cross, int length)
    {
        string Words(int n)
        {
            var sb = new StringBuilder();
            for (int i = 0; i < n; i++) sb.Append(i == 0 ? "" : " ").Append(Vocabulary[rng.Next(Vocabulary.Length)]);
            return sb.ToString();
        }
        return cross
            ? new Inputs([], Enumerable.Range(0, batch).Select(_ => (Words(8), Words(length))).ToArray())
            : new Inputs(Enumerable.Range(0, batch).Select(_ => Words(length)).ToArray(), []);
    }

    private static readonly string[] Vocabulary =
        ("search engine query document ranking retrieval vector index model neural network language text passage answer " +
         "question relevant score token sentence embedding similarity cosine distance nearest neighbor graph layer attention " +
         "weight training data set evaluation metric precision recall river mountain city history science music art " +
         "computer memory cache processor thread matrix product kernel speed fast slow large small quick brown fox jumps " +
         "over lazy dog the of and to in is that for it as with was on by be this are from at or an").Split(' ');

    /// <summary>Core clock from a chain of dependent 64-bit adds (one per cycle on any x64 core): the
    /// best of many short trials, so that one of them runs undisturbed on a shared machine.</summary>
    private static double MeasureGigahertz()
    {
        double best = 0;
        for (int trial = 0; trial < 100; trial++)
        {
            const int n = 1_000_000;
            long start = Stopwatch.GetTimestamp();
            long result = DependentAdds(n);
            double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
            if (result == 42) Console.Write(""); // keeps the chain observable
            best = Math.Max(best, 8.0 * n / seconds / 1e9);
        }
        return best;
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static long DependentAdds(int n)
    {
        long a = 1, b = 3;
        for (int i = 0; i < n; i++)
        {
            a += b; b += a; a += b; b += a;
            a += b; b += a; a += b; b += a;
        }
        return a + b;
    }

    private static string CpuName()
    {
        try
        {
            string? line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
            return line?.Split(':', 2)[1].Trim() ?? "unknown CPU";
        }
        catch (IOException)
        {
            return "unknown CPU";
        }
    }
}
