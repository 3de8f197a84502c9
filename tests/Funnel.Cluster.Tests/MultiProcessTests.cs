using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using Funnel.Tests.Cli;
using Funnel.Tests.Retrieval;

namespace Funnel.Cluster.Tests;

/// <summary>
/// Real <c>funnel serve --cluster</c> processes on loopback, membership in a real Redis the test starts (Debian's
/// redis-server; .ci/run installs it): one node is killed with SIGKILL while writes and searches run on the others.
/// </summary>
public sealed class MultiProcessTests(ClusterModels fixture) : IClassFixture<ClusterModels>, IAsyncLifetime
{
    private readonly SmallModels _m = fixture.Models;
    private readonly string _root = Directory.CreateTempSubdirectory("funnel-cluster-processes-").FullName;
    private readonly Dictionary<string, (Process Process, string Url, string[] Args)> _nodes = [];
    private readonly Dictionary<string, List<string>> _logs = [];
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(30) };
    private Process? _redis;
    private int _redisPort;

    public async Task InitializeAsync()
    {
        string server = new[] { "/usr/bin/redis-server", "/usr/local/bin/redis-server" }.FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException("this test needs Debian's redis-server for cluster membership: apt-get install -y redis-server (.ci/run does)");
        _redisPort = FreePort();
        var start = new ProcessStartInfo(server) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string arg in new[] { "--port", $"{_redisPort}", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", _root }) start.ArgumentList.Add(arg);
        _redis = Process.Start(start)!;
        _ = _redis.StandardOutput.ReadToEndAsync();
        _ = _redis.StandardError.ReadToEndAsync();
        for (int i = 0; ; i++)
        {
            try
            {
                using var probe = new TcpClient();
                await probe.ConnectAsync(IPAddress.Loopback, _redisPort);
                break;
            }
            catch (SocketException) when (i < 50)
            {
                await Task.Delay(100);
            }
        }
    }

    public async Task DisposeAsync()
    {
        foreach (var (process, _, _) in _nodes.Values)
            if (!process.HasExited) process.Kill(entireProcessTree: true);
        if (_redis is { HasExited: false }) _redis.Kill();
        foreach (var (process, _, _) in _nodes.Values) await process.WaitForExitAsync();
        if (_redis is not null) await _redis.WaitForExitAsync();
        _http.Dispose();
        Directory.Delete(_root, recursive: true);
    }

    [Fact]
    public async Task A_node_killed_with_SIGKILL_loses_no_acknowledged_write_and_the_others_answer()
    {
        await Task.WhenAll(StartNodeAsync("n1"), StartNodeAsync("n2"), StartNodeAsync("n3"));
        string n1 = _nodes["n1"].Url, n3 = _nodes["n3"].Url;
        // Sorted n1, n2, n3: shard 0 on n1+n2, shard 1 on n2+n3, shard 2 on n3+n1; W = 2.
        var created = await _http.PostAsJsonAsync($"{n1}/collections", new { name = "docs", shards = 3, replicas = 2, index = "flat" });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var acknowledged = new List<string>();
        foreach (var batch in _m.Documents.Take(20).Chunk(5))
        {
            var put = await _http.PutAsJsonAsync($"{_nodes["n2"].Url}/collections/docs/documents", new { documents = batch.Select(Body) });
            Assert.Equal(HttpStatusCode.OK, put.StatusCode);
            acknowledged.AddRange(batch.Select(d => d.Id));
        }

        var refusals = new List<string>();
        var searches = new List<JsonElement>();
        var missed = new List<string>(); // each search that left a shard out: when, how long it took, which shards
        var clock = Stopwatch.StartNew();
        TimeSpan killedAt = TimeSpan.MaxValue;
        using var stop = new CancellationTokenSource();
        Task writer = Task.Run(async () =>
        {
            foreach (var document in _m.Documents.Skip(20).Take(25))
            {
                var put = await _http.PutAsJsonAsync($"{n1}/collections/docs/documents", new { documents = new[] { Body(document) } });
                if (put.StatusCode == HttpStatusCode.OK) acknowledged.Add(document.Id);
                else
                {
                    string problem = await put.Content.ReadAsStringAsync();
                    Assert.True(put.StatusCode == HttpStatusCode.ServiceUnavailable, $"{(int)put.StatusCode}: {problem}");
                    refusals.Add(problem);
                }
                await Task.Delay(150);
            }
        });
        Task reader = Task.Run(async () =>
        {
            for (int i = 0; !stop.IsCancellationRequested; i++)
            {
                TimeSpan sent = clock.Elapsed;
                string retriever = i % 2 == 0 ? "bm25" : "hybrid";
                var search = await _http.PostAsJsonAsync($"{n3}/collections/docs/search",
                    new { query = ShardedSearchTests.Queries[i % ShardedSearchTests.Queries.Length], retriever, top_k = 5 });
                Assert.True(search.StatusCode == HttpStatusCode.OK, $"search: {(int)search.StatusCode} {await search.Content.ReadAsStringAsync()}");
                JsonElement answer = await search.Content.ReadFromJsonAsync<JsonElement>();
                if (answer.GetProperty("unsearched_shards").GetArrayLength() > 0)
                    lock (missed) missed.Add($"{retriever} search sent {Relative(sent, killedAt)} the kill, took {(clock.Elapsed - sent).TotalMilliseconds:F0} ms and missed {answer.GetProperty("unsearched_shards")}");
                searches.Add(answer);
                await Task.Delay(100);
            }
        });
        // A search that ended before the kill has no kill time yet to measure from.
        static string Relative(TimeSpan sent, TimeSpan killed) =>
            killed == TimeSpan.MaxValue ? "before" : sent < killed ? $"{(killed - sent).TotalMilliseconds:F0} ms before" : $"{(sent - killed).TotalMilliseconds:F0} ms after";
        await Task.Delay(1000);
        killedAt = clock.Elapsed;
        _nodes["n2"].Process.Kill(); // SIGKILL
        int before = searches.Count;
        await writer;
        // At least ten searches after the kill (a loaded machine may be slow), within half a minute.
        for (var waited = Stopwatch.StartNew(); searches.Count < before + 10 && waited.Elapsed < TimeSpan.FromSeconds(30);) await Task.Delay(100);
        stop.Cancel();
        await reader;

        Assert.True(searches.Count >= before + 10, $"{searches.Count - before} searches after the kill");
        if (missed.Count > 0)
        {
            string described = await _http.GetStringAsync($"{n3}/collections/docs");
            Assert.Fail($"{missed.Count} of {searches.Count} searches missed shards:\n{string.Join("\n", missed)}\nnow {described}\n{Log("n3")}");
        }
        Assert.NotEmpty(refusals);
        // Shards 0 and 1 lost a replica; any shard whose grain was on n2 is unreachable until it moves. Each 503 names its shard.
        Assert.All(refusals, r => Assert.Matches(@"shard docs/\d", r));
        Assert.True(acknowledged.Count > 20, "writes to the shard without a replica on n2 went on");
        foreach (string id in acknowledged)
            Assert.Equal(HttpStatusCode.OK, (await _http.GetAsync($"{n3}/collections/docs/documents/{Uri.EscapeDataString(id)}")).StatusCode);

        // n2 comes back with its data folder, catches up, and answers for everything acknowledged.
        await StartNodeAsync("n2", _nodes["n2"].Args);
        clock.Restart();
        while (true)
        {
            JsonElement described = await _http.GetFromJsonAsync<JsonElement>($"{n1}/collections/docs");
            if (described.GetProperty("placement").EnumerateArray().All(s => s.GetProperty("replicas").EnumerateArray().All(r => r.GetProperty("state").GetString() == "in-sync")))
                break;
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), $"n2 did not catch up: {described}");
            await Task.Delay(500);
        }
        foreach (string id in acknowledged)
            Assert.Equal(HttpStatusCode.OK, (await _http.GetAsync($"{_nodes["n2"].Url}/collections/docs/documents/{Uri.EscapeDataString(id)}")).StatusCode);
    }

    private static object Body(Retrieval.Document d) => new { id = d.Id, title = d.Title, text = d.Text };

    private async Task StartNodeAsync(string name, string[]? args = null)
    {
        args ??= ["serve", "--cluster", $"redis:127.0.0.1:{_redisPort}", "--node-name", name, "--collections", Path.Combine(_root, name),
            "--silo-port", $"{FreePort()}", "--gateway-port", $"{FreePort()}", "--urls", "http://127.0.0.1:0", "--bi-encoder", _m.BiEncoderPath];
        Process process = CliProcess.Start(new Dictionary<string, string?> { ["HF_HUB_OFFLINE"] = "1", ["FUNNEL_API_KEY"] = null }, args);
        string url;
        try
        {
            url = await CliProcess.ListeningAddressAsync(process);
        }
        catch
        {
            process.Kill(entireProcessTree: true);
            throw;
        }
        // Keep reading its output, or a full pipe would stop it; its warnings explain a failure.
        var log = new List<string>();
        _ = KeepAsync(process.StandardOutput);
        _ = KeepAsync(process.StandardError);
        lock (_nodes)
        {
            _nodes[name] = (process, url, args);
            _logs[name] = log;
        }

        async Task KeepAsync(StreamReader output)
        {
            while (await output.ReadLineAsync() is { } line)
                if (!line.Contains("\"LogLevel\":\"Information\"", StringComparison.Ordinal))
                    lock (log) log.Add(line);
        }
    }

    /// <summary>The node's last warnings and errors.</summary>
    private string Log(string node)
    {
        List<string> log = _logs[node];
        lock (log) return $"{node}'s last warnings and errors:\n{string.Join("\n", log.TakeLast(40))}";
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
