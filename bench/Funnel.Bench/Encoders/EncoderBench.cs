using System.Diagnostics;
using System.Runtime.Intrinsics.X86;
using StringBuilder = System.Text.StringBuilder;
using System.Text.Json;
using Funnel.Inference;
using Funnel.Tokenization;
using Encoding = Funnel.Tokenization.Encoding;

namespace Funnel.Bench.Encoders;

/// <summary>
/// MiniLM-L6 bi-encoder and cross-encoder throughput, ours against ONNX Runtime (onnxruntime-node)
/// on the same seeded random-weight model, at the same shapes and thread counts, in one run.
/// Our side goes through the public API from text (tokenization included); ONNX Runtime gets the
/// token ids our tokenizer produced for the same texts.
/// </summary>
internal static class EncoderBench
{
    // MiniLM-L6 (all-MiniLM-L6-v2 / ms-marco-MiniLM-L-6-v2): what the FLOP count assumes.
    private const int Layers = 6, Hidden = 384, Intermediate = 1536;
    private const int BiSeed = 1, CrossSeed = 2; // the seeds of tools/reference/bert_reference.py's minilm-bi / minilm-ce
    private const int Warmup = 2, DistinctBatches = 3;

    private sealed record Measurement(double[] LatenciesMs, double PeakMiB, double CpuMsPerBatch)
    {
        public double Percentile(double p)
        {
            double[] sorted = LatenciesMs.Order().ToArray();
            return sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];
        }

        public double PerSecond(int batch) => batch * 1000.0 / LatenciesMs.Average();
    }

    private sealed record OrtResult(string Version, double[] LatenciesMs, double PeakRssBytes, double CpuMsPerBatch, float[][] FirstOutput);

    public static int Run(EncoderSuite.Options options)
    {
        BenchPaths paths = BenchPaths.Locate();
        string biDir = paths.SeededModel("minilm-bi", "all-MiniLM-L6-v2", BiSeed, crossEncoder: false);
        string crossDir = paths.SeededModel("minilm-ce", "ms-marco-MiniLM-L-6-v2", CrossSeed, crossEncoder: true);
        (string biOnnx, string crossOnnx) = paths.OnnxModels();
        paths.EnsureOnnxRuntime();

        double ghz = MeasureGigahertz();
        int flopsPerCycle = Avx512F.IsSupported ? 64 : Fma.IsSupported ? 32 : 8;
        Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {CpuName()}; clock measured {ghz:F2} GHz (dependent-add chain); " +
                          $"fp32 peak assumed {flopsPerCycle} FLOP/cycle/core (2 FMA pipes × {flopsPerCycle / 4} lanes) = {ghz * flopsPerCycle:F0} GFLOP/s per core");
        Console.WriteLine($"batch {options.Batch}, {options.Iterations} timed batches after {Warmup} warm-up; FLOPs = linear layers + attention (Q·Kᵀ, P·V)");
        Console.WriteLine();
        Console.WriteLine("| model | tokens | threads | Funnel seq/s | ORT seq/s | ratio | Funnel p50 / p95 ms | ORT p50 / p95 ms | Funnel GFLOP/s (% peak) | ORT GFLOP/s | Funnel / ORT CPU ms per batch | Funnel peak WS MiB | ORT peak RSS MiB | max abs diff |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        var rng = new Random(42);
        foreach (bool cross in new[] { false, true })
        {
            int[] lengths = cross ? options.SeqLengths.Where(l => l >= 128).DefaultIfEmpty(options.SeqLengths.Max()).ToArray() : options.SeqLengths;
            foreach (int seq in lengths)
            {
                var batches = Enumerable.Range(0, DistinctBatches).Select(_ => MakeInputs(rng, options.Batch, cross, seq)).ToArray();
                foreach (int threads in options.Threads)
                {
                    ResetPeakWorkingSet();
                    var encoderOptions = new EncoderOptions { BatchSize = options.Batch, MaxThreads = threads, MaxSequenceLength = seq };
                    Measurement ours;
                    float[][] ourFirst;
                    BertTokenizer tokenizer;
                    if (cross)
                    {
                        using var model = CrossEncoder.Load(crossDir, encoderOptions);
                        tokenizer = model.Tokenizer;
                        ourFirst = model.Score(batches[0].Pairs).Select(s => new[] { s }).ToArray();
                        ours = Time(options.Iterations, i => model.Score(batches[i % DistinctBatches].Pairs));
                    }
                    else
                    {
                        using var model = SentenceEncoder.Load(biDir, encoderOptions);
                        tokenizer = model.Tokenizer;
                        ourFirst = model.Encode(batches[0].Texts);
                        ours = Time(options.Iterations, i => model.Encode(batches[i % DistinctBatches].Texts));
                    }
                    var encoded = batches.Select(b => cross
                        ? b.Pairs.Select(p => tokenizer.EncodePair(p.Query, p.Document, seq)).ToArray()
                        : b.Texts.Select(t => tokenizer.Encode(t, seq)).ToArray()).ToArray();
                    if (encoded.SelectMany(b => b).Any(e => e.Length != seq))
                        throw new InvalidOperationException($"bench inputs did not fill {seq} tokens");
                    OrtResult ort = RunOnnxRuntime(paths, cross ? crossOnnx : biOnnx, threads, options.Iterations, encoded, meanPool: !cross);
                    var theirs = new Measurement(ort.LatenciesMs, ort.PeakRssBytes / (1 << 20), ort.CpuMsPerBatch);
                    double diff = ourFirst.Zip(ort.FirstOutput).Max(p => p.First.Zip(p.Second).Max(v => Math.Abs(v.First - v.Second)));
                    double gflop = FlopsPerSequence(seq) * options.Batch / 1e9;
                    double ourGflops = gflop * 1000 / ours.LatenciesMs.Average(), ortGflops = gflop * 1000 / theirs.LatenciesMs.Average();
                    double peak = ghz * flopsPerCycle * threads;
                    Console.WriteLine($"| {(cross ? "cross-encoder" : "bi-encoder")} | {seq} | {threads} | {ours.PerSecond(options.Batch):F1} | {theirs.PerSecond(options.Batch):F1} | " +
                                      $"{ours.PerSecond(options.Batch) / theirs.PerSecond(options.Batch):F2} | {ours.Percentile(0.5):F1} / {ours.Percentile(0.95):F1} | " +
                                      $"{theirs.Percentile(0.5):F1} / {theirs.Percentile(0.95):F1} | {ourGflops:F0} ({100 * ourGflops / peak:F0}%) | {ortGflops:F0} | " +
                                      $"{ours.CpuMsPerBatch:F0} / {theirs.CpuMsPerBatch:F0} | {ours.PeakMiB:F0} | {theirs.PeakMiB:F0} | {diff:E1} |");
                }
            }
        }
        Console.WriteLine();
        Console.WriteLine("ONNX Runtime: onnxruntime-node, intra_op_num_threads = threads, inter_op 1, graph optimisations all, sequential; " +
                          "peak memory is each process's peak resident set (VmHWM) during that row; max abs diff compares the first batch's outputs " +
                          "(bi-encoder: normalized mean-pooled embeddings; cross-encoder: logits). CPU ms per batch is process CPU time " +
                          "(ONNX Runtime's pool threads spin while waiting, which inflates its figure above 1 thread).");
        return 0;
    }

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

    private static OrtResult RunOnnxRuntime(BenchPaths paths, string model, int threads, int iterations,
        Encoding[][] batches, bool meanPool)
    {
        var request = new
        {
            model,
            threads,
            iterations,
            warmup = Warmup,
            meanPool,
            batches = batches.Select(b => new { ids = b.Select(e => e.InputIds), types = b.Select(e => e.TokenTypeIds) }),
        };
        var psi = new ProcessStartInfo("node", [Path.Combine(paths.OrtFolder, "run.js")])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = paths.OrtFolder,
        };
        using Process node = Process.Start(psi) ?? throw new InvalidOperationException("could not start node");
        node.StandardInput.Write(JsonSerializer.Serialize(request));
        node.StandardInput.Close();
        Task<string> stderr = node.StandardError.ReadToEndAsync();
        string stdout = node.StandardOutput.ReadToEnd();
        node.WaitForExit();
        if (node.ExitCode != 0) throw new InvalidOperationException($"bench/ort/run.js failed ({node.ExitCode}): {stderr.Result}");
        return JsonSerializer.Deserialize<OrtResult>(stdout, new JsonSerializerOptions { PropertyNameCaseInsensitive = true })
               ?? throw new InvalidOperationException("bench/ort/run.js printed no result");
    }

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
