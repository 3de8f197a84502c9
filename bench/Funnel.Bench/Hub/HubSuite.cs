using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using Funnel.Inference.Hub;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Funnel.Bench.Hub;

/// <summary>
/// <c>hub [--size-mb 256] [--runs 3]</c>: <see cref="ModelResolver"/> fetching a model from a Hub on 127.0.0.1
/// (API, 302 to a CDN path, LFS etag), against the reference floor: one plain HttpClient GET of the same blob
/// streamed to a file, then its SHA-256. Also the latency of a resolve served from the cache.
/// </summary>
internal static class HubSuite
{
    public const string Help = "Hub download throughput vs a plain HttpClient GET + SHA-256; cache-hit resolve latency";

    private const string RepoId = "bench/model";
    private const string Commit = "0123456789abcdef0123456789abcdef01234567";

    public static int Run(string[] args)
    {
        int sizeMb = 256, runs = 3;
        for (int i = 0; i + 1 < args.Length; i += 2)
        {
            bool ok = int.TryParse(args[i + 1], out int value) && value > 0;
            if (args[i] == "--size-mb" && ok) sizeMb = value;
            else if (args[i] == "--runs" && ok) runs = value;
            else
            {
                Console.Error.WriteLine($"hub: expected --size-mb N or --runs N with N > 0, got '{args[i]} {args[i + 1]}'");
                return 2;
            }
        }
        RunAsync(sizeMb, runs).GetAwaiter().GetResult();
        return 0;
    }

    private static async Task RunAsync(int sizeMb, int runs)
    {
        var weights = new byte[sizeMb << 20];
        new Random(42).NextBytes(weights);
        string sha = Convert.ToHexStringLower(SHA256.HashData(weights));
        await using WebApplication server = await StartServerAsync(weights, sha);
        Uri endpoint = new(server.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single());
        string root = Path.Combine(Path.GetTempPath(), "funnel-bench-hub-" + Guid.NewGuid().ToString("N"));
        try
        {
            Console.WriteLine($"hub: {sizeMb} MiB model.safetensors from {endpoint}, {runs} runs, {Environment.ProcessorCount} cores");
            var resolver = new List<double>();
            var reference = new List<double>();
            var cached = new List<double>();
            for (int run = 0; run < runs; run++)
            {
                string cache = Path.Combine(root, $"cache{run}");
                var options = new HubOptions { Endpoint = endpoint, CacheDirectory = cache };
                using var models = new ModelResolver(options);
                var clock = Stopwatch.StartNew();
                await models.ResolveAsync(RepoId);
                resolver.Add(clock.Elapsed.TotalSeconds);

                clock.Restart();
                await models.ResolveAsync(RepoId);
                cached.Add(clock.Elapsed.TotalMilliseconds);

                clock.Restart();
                await PlainDownloadAsync(new Uri(endpoint, "/cdn/" + sha), Path.Combine(root, $"plain{run}"), sha);
                reference.Add(clock.Elapsed.TotalSeconds);
                Directory.Delete(cache, recursive: true);
            }
            double mib = sizeMb;
            Console.WriteLine($"| what | MiB/s (median of {runs}) | best |");
            Console.WriteLine("|---|---|---|");
            Console.WriteLine($"| ModelResolver.ResolveAsync (API + HEADs + ranged GET + fsync + SHA-256 + link) | {mib / Median(resolver):F0} | {mib / resolver.Min():F0} |");
            Console.WriteLine($"| reference: HttpClient GET -> file, then SHA-256 | {mib / Median(reference):F0} | {mib / reference.Min():F0} |");
            Console.WriteLine($"cache-hit resolve: median {Median(cached):F2} ms, best {cached.Min():F2} ms");
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private static async Task PlainDownloadAsync(Uri url, string path, string sha)
    {
        using var http = new HttpClient();
        await using (Stream body = await http.GetStreamAsync(url))
        await using (var file = File.Create(path))
            await body.CopyToAsync(file);
        await using var read = File.OpenRead(path);
        if (Convert.ToHexStringLower(await SHA256.HashDataAsync(read)) != sha) throw new InvalidDataException("reference download corrupt");
        File.Delete(path);
    }

    /// <summary>The parts of the Hub protocol a download touches, for one repository at one commit.</summary>
    private static async Task<WebApplication> StartServerAsync(byte[] weights, string sha)
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0));
        WebApplication app = builder.Build();
        byte[] config = "{\"model_type\": \"bert\"}"u8.ToArray();
        app.MapGet($"/api/models/{RepoId}/revision/main", () => Results.Json(new
        {
            sha = Commit,
            siblings = new[] { new { rfilename = "config.json" }, new { rfilename = "tokenizer.json" }, new { rfilename = "model.safetensors" } },
        }));
        app.MapMethods($"/{RepoId}/resolve/{Commit}/{{file}}", ["GET", "HEAD"], (HttpContext context, string file) =>
        {
            context.Response.Headers["X-Repo-Commit"] = Commit;
            if (file == "model.safetensors")
            {
                context.Response.Headers["X-Linked-Etag"] = $"\"{sha}\"";
                context.Response.Headers["X-Linked-Size"] = weights.Length.ToString(System.Globalization.CultureInfo.InvariantCulture);
                return Results.Redirect($"http://localhost:{context.Connection.LocalPort}/cdn/{sha}");
            }
            context.Response.Headers.ETag = $"\"{Convert.ToHexStringLower(SHA1.HashData(config))}\"";
            return Results.Bytes(config);
        });
        app.MapGet($"/cdn/{sha}", () => Results.Bytes(weights, enableRangeProcessing: true));
        await app.StartAsync();
        return app;
    }

    private static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);
}
