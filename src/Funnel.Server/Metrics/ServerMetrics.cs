using Funnel.Server.Batching;

namespace Funnel.Server.Metrics;

/// <summary>The service's metrics, served at <c>GET /metrics</c>.</summary>
internal sealed class ServerMetrics
{
    private static readonly double[] LatencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
    private static readonly double[] SizeBuckets = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];
    private static readonly double[] TokenBuckets = [16, 64, 256, 1024, 2048, 4096, 8192, 16384, 32768, 65536];

    public ServerMetrics()
    {
        Requests = Registry.AddCounter("funnel_http_requests_total", "HTTP requests by route, method and status code.", "route", "method", "status");
        RequestDuration = Registry.AddHistogram("funnel_http_request_duration_seconds", "HTTP request latency by route and method.", LatencyBuckets, "route", "method");
        BatchSize = Registry.AddHistogram("funnel_batch_size", "Items per executed model batch.", SizeBuckets, "model");
        BatchTokens = Registry.AddHistogram("funnel_batch_tokens", "Tokens per executed model batch.", TokenBuckets, "model");
        BatchRequests = Registry.AddHistogram("funnel_batch_requests", "Distinct requests coalesced into one model batch.", SizeBuckets, "model");
        BatchDuration = Registry.AddHistogram("funnel_batch_duration_seconds", "Model time per batch.", LatencyBuckets, "model");
        QueueWait = Registry.AddHistogram("funnel_batch_queue_wait_seconds", "Wait of the oldest item of each batch before it ran.", LatencyBuckets, "model");
        BatchFailures = Registry.AddCounter("funnel_batch_failures_total", "Model batches that threw.", "model");
        QueueDepth = Registry.AddGauge("funnel_batch_queue_depth", "Items queued for a model and not yet started.", "model");
        ExpectedQueueWait = Registry.AddGauge("funnel_batch_queue_expected_wait_seconds", "How long a request queued now would wait before it starts, from the model's measured throughput.", "model");
        Throughput = Registry.AddGauge("funnel_model_throughput_tokens_per_second", "A model's measured throughput (moving average over its batches).", "model");
        Rejections = Registry.AddCounter("funnel_batch_rejections_total", "Requests refused before queueing: overloaded (429) or a deadline that cannot be met (503).", "model", "reason");
        Inputs = Registry.AddCounter("funnel_inputs_total", "Texts (or query-document pairs) accepted for a model.", "model");
        Tokens = Registry.AddCounter("funnel_tokens_total", "Tokens accepted for a model (after truncation).", "model");
    }

    public PrometheusRegistry Registry { get; } = new();
    public Counter Requests { get; }
    public Histogram RequestDuration { get; }
    public Histogram BatchSize { get; }
    public Histogram BatchTokens { get; }
    public Histogram BatchRequests { get; }
    public Histogram BatchDuration { get; }
    public Histogram QueueWait { get; }
    public Counter BatchFailures { get; }
    public Gauge QueueDepth { get; }
    public Gauge ExpectedQueueWait { get; }
    public Gauge Throughput { get; }
    public Counter Rejections { get; }
    public Counter Inputs { get; }
    public Counter Tokens { get; }

    /// <summary>Records one executed batch of <paramref name="model"/>.</summary>
    public void RecordBatch(string model, BatchReport batch)
    {
        BatchSize.Observe(batch.Items, model);
        BatchTokens.Observe(batch.Cost, model);
        BatchRequests.Observe(batch.Requests, model);
        BatchDuration.Observe(batch.Duration.TotalSeconds, model);
        QueueWait.Observe(batch.OldestWait.TotalSeconds, model);
        if (batch.Failed) BatchFailures.Increment(1, model);
    }
}
