using Funnel.Cluster;
using Funnel.Cluster.Coordination;
using Funnel.Server.Collections;
using Funnel.Server.Endpoints;
using Funnel.Server.Http;
using Funnel.Server.Metrics;
using Funnel.Server.Models;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;

namespace Funnel.Server;

/// <summary>Builds the Funnel HTTP service: TEI-, OpenAI- and Cohere-compatible model routes, collections, operations.</summary>
public static class FunnelServer
{
    /// <summary>
    /// A configured, not yet started app. <paramref name="configure"/> may adjust the builder (URLs, logging) before it
    /// is built. Start it with <c>RunAsync</c>, or <c>StartAsync</c> and <see cref="BoundAddresses"/>.
    /// </summary>
    public static WebApplication Build(ServerOptions options, ServerModels models, Action<WebApplicationBuilder>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(models);
        options.Validate();

        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            Args = [],
            ApplicationName = typeof(FunnelServer).Assembly.GetName().Name,
            ContentRootPath = AppContext.BaseDirectory,
        });
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = options.MaxRequestBodyBytes;
        });
        builder.Services.Configure<HostOptions>(host => host.ShutdownTimeout = options.ShutdownTimeout);
        if (options.JsonLogs)
        {
            builder.Logging.ClearProviders();
            builder.Logging.AddJsonConsole(json =>
            {
                json.IncludeScopes = true;
                json.UseUtcTimestamp = true;
                json.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
            });
            // Per-request framework chatter would drown the service's own events; /metrics counts requests instead.
            builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
            // Orleans logs every connection and membership gossip at Information; its warnings (a node down) still show.
            builder.Logging.AddFilter("Orleans", LogLevel.Warning);
        }

        var metrics = new ServerMetrics();
        var served = new ServedModels(models, options, metrics);
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton(metrics);
        builder.Services.AddOpenTelemetry().WithMetrics(meters => meters
            .AddMeter(ServerMetrics.MeterName)
            // Another server in this process has a meter of the same name: export this server's only.
            .AddView(instrument => instrument.Meter.Name == ServerMetrics.MeterName && !ReferenceEquals(instrument.Meter, metrics.Meter) ? MetricStreamConfiguration.Drop : null)
            .AddPrometheusExporter(prometheus =>
            {
                // The names are Prometheus names already (and those dashboards and README use): no suffixes, no scope labels.
                prometheus.TranslationStrategy = PrometheusAspNetCoreTranslationStrategy.NoTranslation;
                prometheus.ScopeInfoEnabled = false;
                prometheus.TargetInfoEnabled = false;
                // Overload is watched through queue depth and wait: a scrape must see them now, not 300 ms ago.
                prometheus.ScrapeResponseCacheDurationMilliseconds = 0;
            }));
        builder.Services.AddSingleton(served);
        CollectionStore? collections = options.Cluster is null && options.CollectionsDirectory is { } root ? new CollectionStore(root, models.BiEncoder) : null;
        if (collections is not null) builder.Services.AddSingleton(collections);
        if (options.Cluster is { } cluster)
        {
            builder.UseFunnelCluster(cluster, models.BiEncoder?.Fingerprint);
            builder.Services.AddSingleton(sp => new ClusterCollections(sp.GetRequiredService<Orleans.IGrainFactory>(), models.BiEncoder, served.Embedder));
        }
        builder.Services.AddRouting();
        configure?.Invoke(builder);

        WebApplication app = builder.Build();
        app.UseStatusCodePages(ProblemMiddleware.WriteStatusCodePageAsync);
        app.UseRouting();
        app.UseMiddleware<RequestMetricsMiddleware>();
        app.UseMiddleware<ProblemMiddleware>();
        app.UseMiddleware<ApiKeyMiddleware>();
        // GET only, as the OpenAPI document says (the exporter maps every method).
        app.MapPrometheusScrapingEndpoint("/metrics").WithMetadata(new HttpMethodMetadata([HttpMethods.Get]));

        OperationsEndpoints.Map(app);
        ModelEndpoints.Map(app);
        if (options.Cluster is null) CollectionEndpoints.Map(app);
        else ClusterCollectionEndpoints.Map(app);

        app.Lifetime.ApplicationStarted.Register(() => app.Logger.LogInformation(
            "Serving bi-encoder {BiEncoder}, cross-encoder {CrossEncoder}, collections {Collections}; batches of at most {MaxBatchItems} inputs / {MaxBatchTokens} tokens, {MaxWaitMs} ms wait",
            served.Embedder is { } e ? $"{e.Id} (dim {e.Dimension}, {e.MaxInputTokens} tokens)" : "none",
            served.Reranker is { } r ? $"{r.Id} ({r.MaxInputTokens} tokens)" : "none",
            options.Cluster is { } c ? $"cluster node {c.NodeName} ({c.DataDirectory})" : options.CollectionsDirectory ?? "off", options.EmbedBatching.MaxBatchItems, options.EmbedBatching.MaxBatchCost,
            options.EmbedBatching.MaxWait.TotalMilliseconds));
        // Models are built outside and handed in; their batchers must drain before the host lets go of them.
        app.Lifetime.ApplicationStopped.Register(() =>
        {
            served.DisposeAsync().AsTask().GetAwaiter().GetResult();
            collections?.Dispose();
            metrics.Dispose();
        });
        return app;
    }

    /// <summary>The addresses a started app listens on (with the real port when it was bound to port 0).</summary>
    public static IReadOnlyList<string> BoundAddresses(WebApplication app) =>
        app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.ToArray() ?? [];
}
