using System.Diagnostics;
using System.IO.Compression;
using System.Text.Json;
using Funnel.Bench.Encoders;
using Funnel.Tokenization;

namespace Funnel.Bench.Tokenizer;

/// <summary>
/// <c>tokenizer [--seconds S] [--threads 1,2]</c>: BertTokenizer throughput (tokens/s, MB/s), per-text latency
/// and allocation on NFCorpus documents and STS-B sentences, beside Hugging Face's Rust tokenizer
/// (the `tokenizers` npm binding, one thread) on the same texts in the same run.
/// </summary>
internal static class TokenizerSuite
{
    public const string Help = "BertTokenizer tokens/s on NFCorpus + STS-B vs Hugging Face tokenizers (Rust, npm binding)";

    public static int Run(string[] args)
    {
        double seconds = 3;
        int[] threads = [1, Environment.ProcessorCount];
        for (int i = 0; i + 1 < args.Length; i += 2)
        {
            switch (args[i])
            {
                case "--seconds" when double.TryParse(args[i + 1], out double s) && s > 0: seconds = s; break;
                case "--threads": threads = args[i + 1].Split(',').Select(int.Parse).ToArray(); break;
                default:
                    Console.Error.WriteLine($"tokenizer: unknown or invalid option {args[i]} {args[i + 1]}; expected --seconds S, --threads 1,2");
                    return 2;
            }
        }
        if (args.Length % 2 != 0)
        {
            Console.Error.WriteLine($"tokenizer: {args[^1]} needs a value");
            return 2;
        }

        BenchPaths paths;
        try
        {
            paths = BenchPaths.Locate();
        }
        catch (InvalidOperationException e)
        {
            Console.Error.WriteLine($"tokenizer: {e.Message}");
            return 1;
        }
        string modelDir = Path.Combine(paths.Shared, "models", "all-MiniLM-L6-v2");
        var tokenizer = BertTokenizer.FromFolder(modelDir);
        var corpora = new (string Name, string[] Texts)[]
        {
            ("NFCorpus documents", NfCorpus(paths.Shared)),
            ("STS-B sentences", StsSentences(paths.Shared)),
        };

        var anchors = new TokenizerAnchors(modelDir);
        Console.WriteLine($"machine: {Environment.ProcessorCount} cores; model {modelDir}; no truncation, no padding; {seconds:F0} s per measurement");
        Console.WriteLine($"{"corpus",-20} {"impl",-28} {"threads",7} {"tokens/s",12} {"MB/s",8} {"p50 µs",8} {"p99 µs",8} {"alloc B/text",13}");
        foreach (var (name, texts) in corpora)
        {
            long bytes = texts.Sum(t => (long)System.Text.Encoding.UTF8.GetByteCount(t));
            long tokens = texts.Sum(t => (long)tokenizer.Encode(t, int.MaxValue).Length); // also the warm-up
            var (p50, p99, alloc) = Latency(tokenizer, texts);
            foreach (int t in threads)
            {
                double passesPerSecond = Throughput(text => tokenizer.Encode(text, int.MaxValue), texts, t, seconds);
                Console.WriteLine($"{name,-20} {"Funnel BertTokenizer",-28} {t,7} {tokens * passesPerSecond,12:N0} {bytes * passesPerSecond / 1e6,8:F1} " +
                    (t == 1 ? $"{p50,8:F1} {p99,8:F1} {alloc,13:N0}" : ""));
            }
            // Truncated encodes stop early, so the useful measure is texts per second.
            double truncated = Throughput(text => tokenizer.Encode(text, Truncated), texts, 1, seconds) * texts.Length;
            Console.WriteLine($"{name,-20} {$"Funnel, max length {Truncated}",-28} {1,7} {truncated,12:N0} texts/s");
            if (Reference(paths, modelDir, texts, seconds) is { } reference)
            {
                double rate = reference.Passes / reference.Seconds;
                string check = reference.Tokens == tokens ? "" : $"  (token count differs: {reference.Tokens:N0} vs ours {tokens:N0})";
                Console.WriteLine($"{name,-20} {"HF tokenizers " + reference.Version,-28} {1,7} {reference.Tokens * rate,12:N0} {bytes * rate / 1e6,8:F1}{check}");
            }
            foreach (var (anchor, encode) in anchors.Implementations)
            {
                long anchorTokens = texts.Sum(text => (long)encode(text).Length); // also the warm-up
                double rate = Throughput(text => encode(text), texts, 1, seconds);
                Console.WriteLine($"{name,-20} {anchor,-28} {1,7} {anchorTokens * rate,12:N0} {bytes * rate / 1e6,8:F1}");
            }
        }
        PrintAgreement(paths.Repo, tokenizer, anchors);
        return 0;
    }

    /// <summary>How many HF fixture encodings each implementation reproduces id for id, and the first text each gets wrong.</summary>
    private static void PrintAgreement(string repo, BertTokenizer funnel, TokenizerAnchors anchors)
    {
        var cases = TokenizerAnchors.FixtureCases(repo);
        Console.WriteLine();
        Console.WriteLine($"| implementation | HF fixture encodings reproduced (single texts, untruncated) | first mismatch |");
        Console.WriteLine("|---|---:|---|");
        var all = new List<(string, Func<string, int[]>)> { ("Funnel BertTokenizer", text => funnel.Encode(text, int.MaxValue).InputIds.ToArray()) };
        all.AddRange(anchors.Implementations);
        foreach (var (name, encode) in all)
        {
            int same = 0;
            string? first = null;
            foreach (var (text, ids) in cases)
            {
                int[] ours;
                try { ours = encode(text); }
                catch (Exception e) when (e is ArgumentException or InvalidOperationException) { ours = []; }
                if (ours.AsSpan().SequenceEqual(ids)) same++;
                else first ??= JsonSerializer.Serialize(text.Length > 40 ? text[..40] + "…" : text);
            }
            Console.WriteLine($"| {name} | {same:N0} / {cases.Count:N0} ({100.0 * same / cases.Count:F1} %) | {first ?? "none"} |");
        }
    }

    private const int Truncated = 256;

    /// <summary>Passes over all texts per second, with <paramref name="threads"/> threads sharing one encoder.</summary>
    private static double Throughput(Action<string> encode, string[] texts, int threads, double seconds)
    {
        var clock = Stopwatch.StartNew();
        long passes = 0;
        while (clock.Elapsed.TotalSeconds < seconds)
        {
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, worker =>
            {
                for (int i = worker; i < texts.Length; i += threads) encode(texts[i]);
            });
            passes++;
        }
        return passes / clock.Elapsed.TotalSeconds;
    }

    private static (double P50, double P99, double AllocPerText) Latency(BertTokenizer tokenizer, string[] texts)
    {
        var micros = new double[texts.Length];
        long allocated = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < texts.Length; i++)
        {
            long start = Stopwatch.GetTimestamp();
            tokenizer.Encode(texts[i], int.MaxValue);
            micros[i] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
        }
        double alloc = (GC.GetAllocatedBytesForCurrentThread() - allocated) / (double)texts.Length;
        Array.Sort(micros);
        return (micros[micros.Length / 2], micros[(int)(micros.Length * 0.99)], alloc);
    }

    private sealed record ReferenceResult(string Version, long Tokens, int Passes, double Seconds);

    /// <summary>HF's tokenizer on the same texts, or null (with the reason on stderr) when node or the package is missing.</summary>
    private static ReferenceResult? Reference(BenchPaths paths, string modelDir, string[] texts, double seconds)
    {
        string tool = Path.Combine(paths.Repo, "tools", "tokenizer-reference");
        if (!Directory.Exists(Path.Combine(tool, "node_modules", "tokenizers")))
        {
            Console.Error.WriteLine($"reference skipped: run 'npm ci' in {tool}");
            return null;
        }
        string textsFile = Path.Combine(Path.GetTempPath(), $"funnel-tokenizer-bench-{Environment.ProcessId}.json");
        File.WriteAllText(textsFile, JsonSerializer.Serialize(texts));
        try
        {
            var psi = new ProcessStartInfo("node", [Path.Combine(tool, "bench.js"), modelDir, textsFile, seconds.ToString(System.Globalization.CultureInfo.InvariantCulture)])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            psi.Environment["RAYON_NUM_THREADS"] = "1";
            using Process node = Process.Start(psi) ?? throw new InvalidOperationException("could not start node");
            Task<string> stderr = node.StandardError.ReadToEndAsync();
            string stdout = node.StandardOutput.ReadToEnd();
            node.WaitForExit();
            if (node.ExitCode != 0)
            {
                Console.Error.WriteLine($"reference failed ({node.ExitCode}): {stderr.Result}");
                return null;
            }
            return JsonSerializer.Deserialize<ReferenceResult>(stdout, new JsonSerializerOptions { PropertyNameCaseInsensitive = true });
        }
        finally
        {
            File.Delete(textsFile);
        }
    }

    private static string[] NfCorpus(string shared)
    {
        using ZipArchive zip = ZipFile.OpenRead(Path.Combine(shared, "datasets", "beir-nfcorpus", "nfcorpus.zip"));
        using var reader = new StreamReader(zip.GetEntry("nfcorpus/corpus.jsonl")!.Open());
        var texts = new List<string>();
        while (reader.ReadLine() is { Length: > 0 } line)
        {
            using JsonDocument doc = JsonDocument.Parse(line);
            texts.Add($"{doc.RootElement.GetProperty("title").GetString()}. {doc.RootElement.GetProperty("text").GetString()}");
        }
        return texts.ToArray();
    }

    private static string[] StsSentences(string shared) =>
        File.ReadLines(Path.Combine(shared, "datasets", "stsbenchmark", "sts-test.csv"))
            .Select(l => l.Split('\t')).Where(f => f.Length > 6).SelectMany(f => new[] { f[5], f[6] }).ToArray();
}
