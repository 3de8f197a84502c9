using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Funnel.Retrieval;
using Funnel.Server.Batching;

namespace Funnel.Server.Metrics;

/// <summary>
/// The service's instruments on a <see cref="System.Diagnostics.Metrics.Meter"/> named <see cref="MeterName"/>, which
/// OpenTelemetry's Prometheus exporter serves at <c>GET /metrics</c> (and any other listener, e.g. <c>dotnet-counters</c>,
/// can read). Instrument names are the Prometheus names, exported without translation, so dashboards keep working.
/// Each server has its own meter; its exporter reads only that one (<see cref="FunnelServer"/>), so servers sharing a
/// process do not mix their series.
/// </summary>
internal sealed class ServerMetrics : IDisposable
{
    public const string MeterName = "Funnel";

    private static readonly double[] LatencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
    private static readonly double[] SizeBuckets = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];
    private static readonly double[] TokenBuckets = [16, 64, 256, 1024, 2048, 4096, 8192, 16384, 32768, 65536];

    private readonly ConcurrentDictionary<string, QueueGauges> _queues = new(StringComparer.Ordinal);
    private readonly Counter<long> _requests;
    private readonly Histogram<double> _requestDuration;
    private readonly Histogram<double> _batchSize;
    private readonly Histogram<double> _batchTokens;
    private readonly Histogram<double> _batchRequests;
    private readonly Histogram<double> _batchDuration;
    private readonly Histogram<double> _queueWait;
    private readonly Counter<long> _batchFailures;
    private readonly Counter<long> _rejections;
    private readonly Counter<long> _inputs;
    private readonly Counter<long> _tokens;
    private readonly Histogram<double> _searchStage;

    public ServerMetrics()
    {
        Meter = new Meter(MeterName, OperationsVersion);
        _requests = Meter.CreateCounter<long>("funnel_http_requests_total", null, "HTTP requests by route, method and status code.");
        _requestDuration = Histogram("funnel_http_request_duration_seconds", "s", "HTTP request latency by route and method.", LatencyBuckets);
        _batchSize = Histogram("funnel_batch_size", "{item}", "Items per executed model batch.", SizeBuckets);
        _batchTokens = Histogram("funnel_batch_tokens", "{token}", "Tokens per executed model batch.", TokenBuckets);
        _batchRequests = Histogram("funnel_batch_requests", "{request}", "Distinct requests coalesced into one model batch.", SizeBuckets);
        _batchDuration = Histogram("funnel_batch_duration_seconds", "s", "Model time per batch.", LatencyBuckets);
        _queueWait = Histogram("funnel_batch_queue_wait_seconds", "s", "Wait of the oldest item of each batch before it ran.", LatencyBuckets);
        _batchFailures = Meter.CreateCounter<long>("funnel_batch_failures_total", null, "Model batches that threw.");
        _rejections = Meter.CreateCounter<long>("funnel_batch_rejections_total", null,
            "Requests refused before queueing: overloaded (429) or a deadline that cannot be met (503).");
        _inputs = Meter.CreateCounter<long>("funnel_inputs_total", null, "Texts (or query-document pairs) accepted for a model.");
        _tokens = Meter.CreateCounter<long>("funnel_tokens_total", null, "Tokens accepted for a model (after truncation).");
        _searchStage = Histogram("funnel_search_stage_duration_seconds", "s",
            "Collection search time per stage: query embedding, first-stage retrieval, fusion, reranking.", LatencyBuckets);
        Meter.CreateObservableGauge("funnel_batch_queue_depth", () => Observe(q => q.Depth()), "{item}", "Items queued for a model and not yet started.");
        Meter.CreateObservableGauge("funnel_batch_queue_expected_wait_seconds", () => Observe(q => q.ExpectedWait()), "s",
            "How long a request queued now would wait before it starts, from the model's measured throughput.");
        Meter.CreateObservableGauge("funnel_model_throughput_tokens_per_second", () => Observe(q => q.Throughput()), "{token}/s",
            "A model's measured throughput (moving average over its batches).");
    }

    /// <summary>The meter every instrument is on; <see cref="FunnelServer"/> exports it and no other meter of its name.</summary>
    public Meter Meter { get; }

    private static string OperationsVersion => Endpoints.OperationsEndpoints.Version;

    /// <summary>Reports a model's queue depth, expected wait and throughput (read at every collection) under its id.</summary>
    public void TrackQueue(string model, Func<double> depth, Func<double> expectedWait, Func<double> throughput) =>
        _queues[model] = new QueueGauges(depth, expectedWait, throughput);

    /// <summary>One HTTP request, by route template (bounded), method and status.</summary>
    public void RecordRequest(string route, string method, int status, TimeSpan elapsed)
    {
        _requests.Add(1, new("route", route), new("method", method), new("status", status.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        _requestDuration.Record(elapsed.TotalSeconds, new("route", route), new("method", method));
    }

    /// <summary>Records one executed batch of <paramref name="model"/>.</summary>
    public void RecordBatch(string model, BatchReport batch)
    {
        var tag = new KeyValuePair<string, object?>("model", model);
        _batchSize.Record(batch.Items, tag);
        _batchTokens.Record(batch.Cost, tag);
        _batchRequests.Record(batch.Requests, tag);
        _batchDuration.Record(batch.Duration.TotalSeconds, tag);
        _queueWait.Record(batch.OldestWait.TotalSeconds, tag);
        if (batch.Failed) _batchFailures.Add(1, tag);
    }

    /// <summary>A request refused before queueing: <c>overloaded</c> or <c>deadline</c>.</summary>
    public void RecordRejection(string model, string reason) => _rejections.Add(1, new("model", model), new("reason", reason));

    /// <summary>Inputs and their tokens accepted for a model.</summary>
    public void RecordAccepted(string model, int inputs, long tokens)
    {
        _inputs.Add(inputs, new KeyValuePair<string, object?>("model", model));
        _tokens.Add(tokens, new KeyValuePair<string, object?>("model", model));
    }

    /// <summary>A collection search's stage times.</summary>
    public void RecordSearch(StageTimings timings)
    {
        _searchStage.Record(timings.Embed.TotalSeconds, new KeyValuePair<string, object?>("stage", "embed"));
        _searchStage.Record(timings.Retrieve.TotalSeconds, new KeyValuePair<string, object?>("stage", "retrieve"));
        _searchStage.Record(timings.Fuse.TotalSeconds, new KeyValuePair<string, object?>("stage", "fuse"));
        _searchStage.Record(timings.Rerank.TotalSeconds, new KeyValuePair<string, object?>("stage", "rerank"));
    }

    public void Dispose() => Meter.Dispose();

    private Histogram<double> Histogram(string name, string unit, string description, double[] buckets) =>
        Meter.CreateHistogram(name, unit, description, tags: null, new InstrumentAdvice<double> { HistogramBucketBoundaries = buckets });

    private IEnumerable<Measurement<double>> Observe(Func<QueueGauges, double> read) =>
        _queues.Select(q => new Measurement<double>(read(q.Value), new KeyValuePair<string, object?>("model", q.Key)));

    private sealed record QueueGauges(Func<double> Depth, Func<double> ExpectedWait, Func<double> Throughput);
}
