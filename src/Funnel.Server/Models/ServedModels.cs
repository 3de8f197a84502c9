using Funnel.Server.Http;
using Funnel.Server.Metrics;

namespace Funnel.Server.Models;

/// <summary>The batched models of a running service; either may be absent.</summary>
internal sealed class ServedModels : IAsyncDisposable
{
    public ServedModels(ServerModels models, ServerOptions options, ServerMetrics metrics)
    {
        if (models.BiEncoder is { } bi)
            Embedder = new BatchingEmbeddingGenerator(bi, models.BiEncoderId ?? Path.GetFileName(bi.Fingerprint.Model), options.EmbedBatching, metrics);
        if (models.CrossEncoder is { } cross)
            Reranker = new BatchingReranker(cross, models.CrossEncoderId ?? "cross-encoder", options.RerankBatching, metrics);
    }

    public BatchingEmbeddingGenerator? Embedder { get; }
    public BatchingReranker? Reranker { get; }

    public BatchingEmbeddingGenerator RequireEmbedder() => Embedder ??
        throw ApiException.NotFound("this server has no bi-encoder; start it with --bi-encoder MODEL to embed");

    public BatchingReranker RequireReranker() => Reranker ??
        throw ApiException.NotFound("this server has no cross-encoder (none is packaged with Funnel); start it with --cross-encoder MODEL (a folder or Hub id) to rerank");

    /// <summary>Drains both batchers (accepted requests still complete).</summary>
    public async ValueTask DisposeAsync()
    {
        if (Embedder is not null) await Embedder.DisposeAsync();
        if (Reranker is not null) await Reranker.DisposeAsync();
    }
}
