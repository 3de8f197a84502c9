using Funnel.Server.Batching;

namespace Funnel.Server;

/// <summary>How <c>funnel serve</c> behaves: security, request limits and batching.</summary>
public sealed record ServerOptions
{
    /// <summary>When set, every route but <c>/health</c> needs <c>Authorization: Bearer &lt;key&gt;</c>.</summary>
    public string? ApiKey { get; init; }

    /// <summary>Largest accepted request body (413 beyond it). TEI's default payload limit.</summary>
    public long MaxRequestBodyBytes { get; init; } = 2_000_000;

    /// <summary>Most inputs (texts, documents) in one request (413 beyond it).</summary>
    public int MaxInputsPerRequest { get; init; } = 1_024;

    /// <summary>Truncate inputs longer than the model's window even when the request does not ask to (else 413).</summary>
    public bool AutoTruncate { get; init; }

    /// <summary>Batching of the bi-encoder (<c>/embed</c>, <c>/v1/embeddings</c>, collection writes and dense search).</summary>
    public BatcherOptions EmbedBatching { get; init; } = new();

    /// <summary>Batching of the cross-encoder (<c>/rerank</c>, <c>/v1/rerank</c>, reranked search).</summary>
    public BatcherOptions RerankBatching { get; init; } = new();

    /// <summary>Folder holding one sub-folder per collection; null disables the collection routes.</summary>
    public string? CollectionsDirectory { get; init; }

    /// <summary>Join a cluster (<c>funnel serve --cluster</c>): the collection routes then serve sharded, replicated collections
    /// kept on the cluster's nodes (<see cref="CollectionsDirectory"/> is unused). Null: one node, the default.</summary>
    public Funnel.Cluster.FunnelClusterOptions? Cluster { get; init; }

    /// <summary>How long shutdown waits for accepted requests to finish.</summary>
    public TimeSpan ShutdownTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Structured (JSON) console logs; off leaves the host's logging as configured.</summary>
    public bool JsonLogs { get; init; } = true;

    internal void Validate()
    {
        if (MaxRequestBodyBytes < 1) throw new ArgumentOutOfRangeException(nameof(MaxRequestBodyBytes), MaxRequestBodyBytes, "must be positive");
        if (MaxInputsPerRequest < 1) throw new ArgumentOutOfRangeException(nameof(MaxInputsPerRequest), MaxInputsPerRequest, "must be positive");
        if (ApiKey is { Length: 0 }) throw new ArgumentException("an empty API key would let everyone in; omit it instead", nameof(ApiKey));
        if (Cluster?.Problem() is { } cluster) throw new ArgumentException(cluster, nameof(Cluster));
        EmbedBatching.Validate();
        RerankBatching.Validate();
        if (MaxInputsPerRequest > EmbedBatching.MaxQueuedItems || MaxInputsPerRequest > RerankBatching.MaxQueuedItems)
            throw new ArgumentException($"the most inputs per request (--max-inputs, {MaxInputsPerRequest}) must not exceed the batch queue's capacity " +
                $"(--max-queue, {Math.Min(EmbedBatching.MaxQueuedItems, RerankBatching.MaxQueuedItems)}), or such requests could never run", nameof(MaxInputsPerRequest));
    }
}
