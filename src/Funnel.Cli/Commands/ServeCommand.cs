using System.CommandLine;
using Funnel.Inference;
using Funnel.Inference.Packaged;
using Funnel.Server;
using Funnel.Server.Batching;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Hosting;

namespace Funnel.Cli.Commands;

/// <summary>
/// <c>funnel serve</c>: the HTTP service (TEI-, OpenAI- and Cohere-compatible model routes, collections, metrics).
/// Runs until SIGINT/SIGTERM, then stops taking connections and finishes the requests it accepted.
/// </summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var collections = new Option<string?>("--collections") { Description = "Folder holding one sub-folder per collection; enables the /collections routes" };
        var biEncoder = new Option<string?>("--bi-encoder")
        {
            Description = $"Bi-encoder: a model folder, packaged id or Hub id (enables /embed, /v1/embeddings and dense search; default when no model is named: {PackagedModels.DefaultBiEncoder.Id}, packaged)",
        };
        var crossEncoder = new Option<string?>("--cross-encoder") { Description = "Cross-encoder: a model folder or a Hub id, none is packaged (enables /rerank, /v1/rerank and reranked search)" };
        var urls = new Option<string>("--urls") { Description = "Listen URLs, ';'-separated", DefaultValueFactory = _ => "http://127.0.0.1:8080" };
        var apiKey = new Option<string?>("--api-key") { Description = "Require 'Authorization: Bearer KEY' on every route but /health (default: $FUNNEL_API_KEY)" };
        var maxBatchTokens = new Option<int>("--max-batch-tokens") { Description = "Most tokens in one model batch", DefaultValueFactory = _ => new BatcherOptions().MaxBatchCost };
        var maxBatchSize = new Option<int>("--max-batch-size") { Description = "Most inputs in one model batch", DefaultValueFactory = _ => new BatcherOptions().MaxBatchItems };
        var maxWait = new Option<double>("--max-wait-ms") { Description = "How long a lone input waits for company before its batch runs", DefaultValueFactory = _ => new BatcherOptions().MaxWait.TotalMilliseconds };
        var maxQueue = new Option<int>("--max-queue") { Description = "Inputs queued per model before requests get 429", DefaultValueFactory = _ => new BatcherOptions().MaxQueuedItems };
        var maxQueueWait = new Option<double>("--max-queue-wait-ms")
        {
            Description = "Longest expected wait (from each model's measured throughput) behind which a request is still queued; beyond it, 429 with Retry-After",
            DefaultValueFactory = _ => new BatcherOptions().MaxQueueWait.TotalMilliseconds,
        };
        var maxInputs = new Option<int>("--max-inputs") { Description = "Most inputs (texts, documents) in one request", DefaultValueFactory = _ => new ServerOptions().MaxInputsPerRequest };
        var maxBody = new Option<long>("--max-body-bytes") { Description = "Largest request body", DefaultValueFactory = _ => new ServerOptions().MaxRequestBodyBytes };
        var autoTruncate = new Option<bool>("--auto-truncate") { Description = "Truncate over-long inputs instead of answering 413 when a request does not say" };
        var threads = new Option<int>("--threads") { Description = "Threads per model forward pass", DefaultValueFactory = _ => Environment.ProcessorCount };
        Option<string?> precision = ModelOption.Precision();
        var cluster = new Option<string?>("--cluster")
        {
            Description = "Join a cluster of Funnel nodes, membership in Redis (redis:HOST:PORT), PostgreSQL (postgres:CONNECTION-STRING) or kept by a primary node (primary:HOST:SILO-PORT); " +
                          "--collections is then this node's data folder. See docs/cluster.md",
        };
        var nodeName = new Option<string?>("--node-name") { Description = "This node's name in the cluster, the same across restarts (default: HOST-SILO-PORT)" };
        var siloPort = new Option<int>("--silo-port") { Description = "Port the cluster's nodes talk on", DefaultValueFactory = _ => 11111 };
        var gatewayPort = new Option<int>("--gateway-port") { Description = "Port Orleans clients connect to", DefaultValueFactory = _ => 30000 };
        var command = new Command("serve", "Run the HTTP service: embeddings and reranking (TEI, OpenAI and Cohere compatible), collections and search.")
        {
            collections, biEncoder, crossEncoder, urls, apiKey, maxBatchTokens, maxBatchSize, maxWait, maxQueue, maxQueueWait, maxInputs, maxBody, autoTruncate, threads, precision,
            cluster, nodeName, siloPort, gatewayPort,
        };
        // Synchronous on purpose: the host handles SIGINT/SIGTERM itself and drains for up to ShutdownTimeout, which an
        // async System.CommandLine action would cut short after its own termination timeout.
        command.SetAction(parse => CliAction.Run(parse, output =>
        {
            if (parse.GetValue(collections) is { } root && File.Exists(root))
                throw new UsageException($"--collections '{root}' is a file; give the folder that holds (or will hold) one sub-folder per collection");
            var batching = new BatcherOptions
            {
                MaxBatchCost = parse.GetValue(maxBatchTokens),
                MaxBatchItems = parse.GetValue(maxBatchSize),
                MaxWait = TimeSpan.FromMilliseconds(parse.GetValue(maxWait)),
                MaxQueuedItems = parse.GetValue(maxQueue),
                MaxQueueWait = parse.GetValue(maxQueueWait) is > 0 and var ms ? TimeSpan.FromMilliseconds(ms)
                    : throw new UsageException($"--max-queue-wait-ms must be positive (got {parse.GetValue(maxQueueWait)})"),
            };
            var options = new ServerOptions
            {
                ApiKey = parse.GetValue(apiKey) ?? NonEmpty(Environment.GetEnvironmentVariable("FUNNEL_API_KEY")),
                MaxRequestBodyBytes = parse.GetValue(maxBody),
                MaxInputsPerRequest = parse.GetValue(maxInputs),
                AutoTruncate = parse.GetValue(autoTruncate),
                EmbedBatching = batching,
                RerankBatching = batching,
                CollectionsDirectory = parse.GetValue(collections) is { } dir ? Path.GetFullPath(dir) : null,
                Cluster = ClusterOptions(parse.GetValue(cluster), parse.GetValue(nodeName), parse.GetValue(collections), parse.GetValue(siloPort), parse.GetValue(gatewayPort)),
            };
            string[] listen = ListenUrls(parse.GetValue(urls)!);
            string? cross = parse.GetValue(crossEncoder);
            string? bi = parse.GetValue(biEncoder) ?? (cross is null ? PackagedModels.DefaultBiEncoder.Id : null);
            int maxThreads = parse.GetValue(threads);
            InferencePrecision arithmetic = ModelOption.ParsePrecision(parse.GetValue(precision)) ?? InferencePrecision.Fp32;
            TextWriter log = parse.InvocationConfiguration.Error;

            using SentenceEncoder? sentenceEncoder = bi is null ? null : SentenceEncoder.Load(Resolve(bi, "bi-encoder", log), new EncoderOptions { MaxThreads = maxThreads, Precision = arithmetic });
            // Raw logits: the routes apply the sigmoid themselves where their API wants probabilities.
            using CrossEncoder? reranker = cross is null ? null
                : CrossEncoder.Load(Resolve(cross, "cross-encoder", log), new EncoderOptions { MaxThreads = maxThreads, Activation = ScoreActivation.Identity, Precision = arithmetic });
            var models = new ServerModels(sentenceEncoder, bi is null ? null : ModelId(bi), reranker, cross is null ? null : ModelId(cross));

            WebApplication app = FunnelServer.Build(options, models, builder => builder.WebHost.UseUrls(listen));
            try
            {
                app.Start();
            }
            catch (IOException ex) // address in use, no permission
            {
                throw new UsageException($"cannot listen on {parse.GetValue(urls)}: {ex.Message}");
            }
            catch (Exception ex) when (options.Cluster is not null && Innermost<Funnel.Cluster.ClusterException>(ex) is { } refused)
            {
                // Another Funnel version or bi-encoder, or a taken node name: the node does not join.
                throw new UsageException(refused.Message);
            }
            app.WaitForShutdown();
            app.DisposeAsync().AsTask().GetAwaiter().GetResult();
            return 0;
        }));
        return command;
    }

    /// <summary>The cluster to join, or null (one node); a usage error names the option at fault.</summary>
    private static Funnel.Cluster.FunnelClusterOptions? ClusterOptions(string? membership, string? nodeName, string? data, int siloPort, int gatewayPort)
    {
        if (membership is null)
            return nodeName is null ? null : throw new UsageException("--node-name applies to a cluster node: give --cluster too");
        if (data is null) throw new UsageException("--cluster needs --collections DIR: the folder this node keeps its replicas in");
        var options = new Funnel.Cluster.FunnelClusterOptions
        {
            Membership = membership, DataDirectory = Path.GetFullPath(data), SiloPort = siloPort, GatewayPort = gatewayPort,
            NodeName = nodeName ?? $"{System.Net.Dns.GetHostName()}-{siloPort}",
        };
        return options.Problem() is { } problem ? throw new UsageException(problem) : options;
    }

    private static T? Innermost<T>(Exception? ex) where T : Exception
    {
        for (; ex is not null; ex = ex.InnerException)
            if (ex is T found) return found;
        return null;
    }

    private static string[] ListenUrls(string value)
    {
        string[] urls = value.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (urls.Length == 0) throw new UsageException("--urls is empty: give e.g. http://127.0.0.1:8080");
        foreach (string url in urls)
            if (!Uri.TryCreate(url, UriKind.Absolute, out Uri? uri) || uri.Scheme != Uri.UriSchemeHttp)
                throw new UsageException($"--urls: '{url}' is not an http:// URL such as http://127.0.0.1:8080 (for TLS, put a reverse proxy in front)");
        return urls;
    }

    private static string Resolve(string model, string role, TextWriter log) =>
        ModelFolders.ResolveAsync(model, role, log, CancellationToken.None).GetAwaiter().GetResult();

    /// <summary>What clients see as the model name: the Hub id as given, or a folder's name.</summary>
    private static string ModelId(string model) =>
        Directory.Exists(model) ? Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(model))) : model;

    private static string? NonEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;
}
