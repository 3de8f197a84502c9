using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Funnel.Bench.Encoders;
using Funnel.Inference;
using Funnel.Server;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Logging;

namespace Funnel.Bench.Server;

/// <summary>
/// <c>server [--seconds S] [--clients 1,8,64] [--scenarios embed-1,embed-16,rerank-20,rerank-100,search]</c>: a bounded
/// closed-loop load generator against <c>funnel serve</c> on 127.0.0.1. The server runs in a child process (this same
/// executable, <c>server --host</c>) so its peak memory is its own. Random-weight MiniLM-L6 bi- and cross-encoders;
/// texts are STS-benchmark sentences.
/// </summary>
internal static class ServerLoadSuite
{
    public const string Help = "HTTP load: /embed, /rerank, collection search at 1/8/64 clients (throughput, p50/p95/p99, errors, peak RSS)";

    private const int BiSeed = 1, CrossSeed = 2; // the same checkpoints as the encoders suite (shared .cache/bench)
    private const int MaxRequestsPerCell = 20_000;
    private const int ClientTimeoutSeconds = 120;
    private const string Collection = "bench";
    private const int CollectionDocuments = 300;

    private static readonly string[] KnownScenarios = ["embed-1", "embed-16", "rerank-20", "rerank-100", "search"];

    private sealed record Options(double Seconds, int[] Clients, string[] Scenarios);

    private sealed record Scenario(string Name, string Path, int Inputs, Func<int, string> Body);

    public static int Run(string[] args)
    {
        if (args.Length > 0 && args[0] == "--host") return Host(args[1..]);
        Options options;
        try
        {
            options = Parse(args);
        }
        catch (FormatException e)
        {
            Console.Error.WriteLine($"server: {e.Message}");
            return 2;
        }
        BenchPaths paths = BenchPaths.Locate();
        string biDir = paths.SeededModel("minilm-bi", "all-MiniLM-L6-v2", BiSeed, crossEncoder: false);
        string crossDir = paths.SeededModel("minilm-ce", "ms-marco-MiniLM-L-6-v2", CrossSeed, crossEncoder: true);
        string[] sentences = Sentences(Path.Combine(paths.Shared, "datasets", "stsbenchmark", "sts-test.csv"));
        string collections = Path.Combine(Path.GetTempPath(), $"funnel-bench-collections-{Environment.ProcessId}");

        using Process server = StartHost(biDir, crossDir, collections, out string address);
        try
        {
            using var client = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = options.Clients.Max() })
            {
                BaseAddress = new Uri(address),
                Timeout = TimeSpan.FromSeconds(ClientTimeoutSeconds),
            };
            Scenario[] scenarios = [.. Scenarios(sentences).Where(s => options.Scenarios.Contains(s.Name))];
            if (scenarios.Any(s => s.Name == "search")) CreateCollection(client, sentences);

            Console.WriteLine($"Funnel server load, {Environment.ProcessorCount} cores, {options.Seconds:0.#} s per cell (after a 0.3 s single-client warm-up), " +
                              "closed loop (each client sends its next request when the previous answers)");
            Console.WriteLine();
            Console.WriteLine("| scenario | clients | requests/s | inputs/s | p50 ms | p95 ms | p99 ms | errors / timeouts | mean batch | server peak RSS MiB |");
            Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
            foreach (Scenario scenario in scenarios)
                foreach (int clients in options.Clients)
                    Console.WriteLine(Cell(client, server, scenario, clients, options.Seconds));
            Console.WriteLine();
            Console.WriteLine($"errors are non-2xx answers or failed connections, timeouts are requests the client gave up on after {ClientTimeoutSeconds} s; inputs/s counts texts (embed) or query-document pairs (rerank, search with rerank at N = 20); mean batch is items per model " +
                              "batch during the cell (from /metrics); peak RSS is the server process's VmHWM during the cell.");
            return 0;
        }
        finally
        {
            Stop(server);
            if (Directory.Exists(collections)) Directory.Delete(collections, recursive: true);
        }
    }

    private static IEnumerable<Scenario> Scenarios(string[] sentences)
    {
        string Texts(int seed, int count) => JsonSerializer.Serialize(Enumerable.Range(0, count).Select(i => sentences[(seed * 31 + i) % sentences.Length]));
        yield return new Scenario("embed-1", "/embed", 1, i => $"{{\"inputs\":{Texts(i, 1)}}}");
        yield return new Scenario("embed-16", "/embed", 16, i => $"{{\"inputs\":{Texts(i, 16)}}}");
        yield return new Scenario("rerank-20", "/rerank", 20, i => $"{{\"query\":{JsonSerializer.Serialize(sentences[i % sentences.Length])},\"texts\":{Texts(i + 1, 20)}}}");
        yield return new Scenario("rerank-100", "/rerank", 100, i => $"{{\"query\":{JsonSerializer.Serialize(sentences[i % sentences.Length])},\"texts\":{Texts(i + 1, 100)}}}");
        yield return new Scenario("search", $"/collections/{Collection}/search", 20,
            i => $"{{\"query\":{JsonSerializer.Serialize(sentences[i % sentences.Length])},\"retriever\":\"hybrid\",\"candidates\":20,\"top_k\":10}}");
    }

    private static string Cell(HttpClient client, Process server, Scenario scenario, int clients, double seconds)
    {
        Drive(client, scenario, 1, TimeSpan.FromSeconds(0.3)); // warm-up: JIT, a connection, pools
        (double batchSum, double batchCount) before = BatchTotals(client);
        ResetPeakRss(server);
        (List<double> latencies, int errors, int timeouts, TimeSpan elapsed) = Drive(client, scenario, clients, TimeSpan.FromSeconds(seconds));
        (double batchSum, double batchCount) after = BatchTotals(client);
        double peakMiB = PeakRssKiB(server) / 1024.0;

        latencies.Sort();
        double rps = latencies.Count / elapsed.TotalSeconds;
        double meanBatch = after.batchCount > before.batchCount ? (after.batchSum - before.batchSum) / (after.batchCount - before.batchCount) : 0;
        return string.Create(CultureInfo.InvariantCulture,
            $"| {scenario.Name} | {clients} | {rps:F1} | {rps * scenario.Inputs:F0} | {Percentile(latencies, 0.50):F1} | {Percentile(latencies, 0.95):F1} | " +
            $"{Percentile(latencies, 0.99):F1} | {errors} / {timeouts} ({100.0 * (errors + timeouts) / Math.Max(1, latencies.Count + errors + timeouts):F1}%) | {meanBatch:F1} | {peakMiB:F0} |");
    }

    /// <summary>Runs <paramref name="clients"/> closed loops for <paramref name="duration"/> (and at most MaxRequestsPerCell requests).</summary>
    private static (List<double> Latencies, int Errors, int Timeouts, TimeSpan Elapsed) Drive(HttpClient client, Scenario scenario, int clients, TimeSpan duration)
    {
        var latencies = new List<double>();
        int errors = 0, timeouts = 0, issued = 0;
        var clock = Stopwatch.StartNew();
        Task[] loops = [.. Enumerable.Range(0, clients).Select(c => Task.Run(async () =>
        {
            var mine = new List<double>();
            while (clock.Elapsed < duration && Interlocked.Increment(ref issued) <= MaxRequestsPerCell)
            {
                using var content = new StringContent(scenario.Body(c * 7919 + mine.Count), Encoding.UTF8, "application/json");
                long start = Stopwatch.GetTimestamp();
                try
                {
                    using HttpResponseMessage response = await client.PostAsync(scenario.Path, content);
                    await response.Content.ReadAsByteArrayAsync();
                    if (response.IsSuccessStatusCode) mine.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                    else Interlocked.Increment(ref errors);
                }
                catch (HttpRequestException)
                {
                    Interlocked.Increment(ref errors);
                }
                catch (TaskCanceledException) // the client's timeout
                {
                    Interlocked.Increment(ref timeouts);
                }
            }
            lock (latencies) latencies.AddRange(mine);
        }))];
        Task.WaitAll(loops);
        return (latencies, errors, timeouts, clock.Elapsed);
    }

    private static void CreateCollection(HttpClient client, string[] sentences)
    {
        Post(client, "/collections", $"{{\"name\":\"{Collection}\",\"index\":\"hnsw\"}}");
        for (int start = 0; start < CollectionDocuments; start += 100)
        {
            var documents = Enumerable.Range(start, 100).Select(i => new Dictionary<string, object>
            {
                ["id"] = $"doc-{i}",
                ["title"] = sentences[(i * 2) % sentences.Length],
                ["text"] = string.Join(' ', Enumerable.Range(0, 4).Select(k => sentences[(i * 2 + 1 + k * 97) % sentences.Length])),
            });
            Post(client, $"/collections/{Collection}/documents", JsonSerializer.Serialize(new { documents }));
        }
    }

    private static void Post(HttpClient client, string path, string body)
    {
        using var content = new StringContent(body, Encoding.UTF8, "application/json");
        using HttpResponseMessage response = client.PostAsync(path, content).GetAwaiter().GetResult();
        if (!response.IsSuccessStatusCode)
            throw new InvalidOperationException($"POST {path}: {(int)response.StatusCode} {response.Content.ReadAsStringAsync().GetAwaiter().GetResult()}");
    }

    /// <summary>Sum and count of the batch-size histograms of both models.</summary>
    private static (double Sum, double Count) BatchTotals(HttpClient client)
    {
        string metrics = client.GetStringAsync("/metrics").GetAwaiter().GetResult();
        double sum = 0, count = 0;
        foreach (string line in metrics.Split('\n'))
        {
            if (line.StartsWith("funnel_batch_size_sum", StringComparison.Ordinal)) sum += double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
            if (line.StartsWith("funnel_batch_size_count", StringComparison.Ordinal)) count += double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
        }
        return (sum, count);
    }

    private static double Percentile(List<double> sorted, double p) =>
        sorted.Count == 0 ? double.NaN : sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Count) - 1, 0, sorted.Count - 1)];

    private static string[] Sentences(string stsFile) =>
        [.. File.ReadLines(stsFile).Select(line => line.Split('\t')).Where(f => f.Length >= 7).SelectMany(f => new[] { f[5], f[6] }).Distinct()];

    // ---- the server process ----

    private static Process StartHost(string biDir, string crossDir, string collections, out string address)
    {
        var start = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, RedirectStandardInput = true, UseShellExecute = false };
        // This same program: its apphost, or `dotnet Funnel.Bench.dll` when started that way.
        if (Path.GetFileNameWithoutExtension(start.FileName) == "dotnet") start.ArgumentList.Add(typeof(ServerLoadSuite).Assembly.Location);
        foreach (string arg in new[] { "server", "--host", biDir, crossDir, collections }) start.ArgumentList.Add(arg);
        Process process = Process.Start(start)!;
        string? line = process.StandardOutput.ReadLine();
        if (line is null || !line.StartsWith("http://", StringComparison.Ordinal))
            throw new InvalidOperationException($"the server process did not start (said: {line})");
        address = line;
        return process;
    }

    /// <summary>The child: serve on a free loopback port, print the address, run until stdin closes.</summary>
    private static int Host(string[] args)
    {
        using SentenceEncoder bi = SentenceEncoder.Load(args[0]);
        using CrossEncoder cross = CrossEncoder.Load(args[1], new EncoderOptions { Activation = ScoreActivation.Identity });
        var options = new ServerOptions { CollectionsDirectory = args[2], JsonLogs = false };
        WebApplication app = FunnelServer.Build(options, new ServerModels(bi, "minilm-bi", cross, "minilm-ce"), builder =>
        {
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            builder.Logging.ClearProviders();
        });
        app.StartAsync().GetAwaiter().GetResult();
        Console.WriteLine(FunnelServer.BoundAddresses(app).Single());
        Console.Out.Flush();
        Console.In.ReadToEnd(); // until the parent closes our stdin
        app.StopAsync().GetAwaiter().GetResult();
        return 0;
    }

    private static void Stop(Process server)
    {
        if (server.HasExited) return;
        server.StandardInput.Close();
        if (!server.WaitForExit(15_000)) server.Kill();
    }

    private static void ResetPeakRss(Process server)
    {
        try
        {
            File.WriteAllText($"/proc/{server.Id}/clear_refs", "5");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Not Linux, or not permitted: the column is then the peak so far.
        }
    }

    private static long PeakRssKiB(Process server)
    {
        foreach (string line in File.ReadLines($"/proc/{server.Id}/status"))
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                return long.Parse(line["VmHWM:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
        return 0;
    }

    private static Options Parse(string[] args)
    {
        var options = new Options(3, [1, 8, 64], KnownScenarios);
        for (int i = 0; i < args.Length; i += 2)
        {
            string value = i + 1 < args.Length ? args[i + 1] : throw new FormatException($"{args[i]} needs a value");
            options = args[i] switch
            {
                "--seconds" => options with { Seconds = double.TryParse(value, CultureInfo.InvariantCulture, out double s) && s > 0 && s <= 60 ? s : throw new FormatException($"--seconds must be in (0, 60], got {value}") },
                "--clients" => options with { Clients = [.. value.Split(',').Select(v => int.TryParse(v, out int n) && n is > 0 and <= 256 ? n : throw new FormatException($"--clients takes 1..256, got {v}"))] },
                "--scenarios" => options with { Scenarios = [.. value.Split(',').Select(v => KnownScenarios.Contains(v) ? v : throw new FormatException($"unknown scenario {v}; expected {string.Join(", ", KnownScenarios)}"))] },
                _ => throw new FormatException($"unknown option {args[i]}; expected --seconds, --clients or --scenarios"),
            };
        }
        return options;
    }
}
