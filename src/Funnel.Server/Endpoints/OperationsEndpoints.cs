using System.Reflection;
using Funnel.Server.Models;

namespace Funnel.Server.Endpoints;

/// <summary><c>/health</c>, <c>/info</c> and <c>/openapi.json</c> (<c>/metrics</c> is OpenTelemetry's Prometheus exporter, see <see cref="FunnelServer"/>).</summary>
internal static class OperationsEndpoints
{
    public static readonly string Version =
        typeof(OperationsEndpoints).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";

    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapGet("/health", () => Results.Json(new { status = "ok" }, Http.ApiJson.Options));
        app.MapGet("/info", (ServedModels models, ServerOptions options) => Results.Json(Info(models, options), Http.ApiJson.Options));
        app.MapGet("/openapi.json", () => Results.Stream(OpenApiDocument(), "application/json"));
    }

    /// <summary>TEI's <c>/info</c> fields for the primary model (the bi-encoder if any), plus both models in <c>models</c>.</summary>
    private static InfoResponse Info(ServedModels models, ServerOptions options)
    {
        EmbeddingInfo? embedding = models.Embedder is { } e
            ? new EmbeddingInfo(e.Id, e.Encoder.Source, e.Encoder.Fingerprint.WeightsSha256, e.Dimension, e.Encoder.Fingerprint.Pooling, e.Encoder.Normalize,
                e.MaxInputTokens, e.Encoder.Prompts, e.Encoder.QueryPromptName, e.Encoder.DocumentPromptName, e.Encoder.DefaultPromptName, Batching(e.Batching))
            : null;
        RerankerInfo? reranker = models.Reranker is { } r
            ? new RerankerInfo(r.Id, r.Encoder.Source, r.Encoder.Activation.ToString(), r.MaxInputTokens, Batching(r.Batching))
            : null;
        string? primaryId = embedding?.ModelId ?? reranker?.ModelId;
        Dictionary<string, object>? modelType = embedding is not null
            ? new() { ["embedding"] = new { pooling = embedding.Pooling } }
            : reranker is not null ? new() { ["reranker"] = new { activation = reranker.Activation } } : null;
        BatchingInfo? primaryBatching = embedding?.Batching ?? reranker?.Batching;
        return new InfoResponse(
            ModelId: primaryId,
            ModelSha: embedding?.WeightsSha256,
            ModelDtype: "float32",
            ModelType: modelType,
            MaxConcurrentRequests: primaryBatching?.MaxQueuedItems,
            MaxInputLength: embedding?.MaxInputLength ?? reranker?.MaxInputLength,
            MaxBatchTokens: primaryBatching?.MaxBatchTokens,
            MaxBatchRequests: primaryBatching?.MaxBatchItems,
            MaxClientBatchSize: options.MaxInputsPerRequest,
            AutoTruncate: options.AutoTruncate,
            MaxRequestBytes: options.MaxRequestBodyBytes,
            Version: Version,
            Models: new ModelsInfo(embedding, reranker),
            Collections: options.CollectionsDirectory is not null);
    }

    private static BatchingInfo Batching(Batching.BatcherOptions o) =>
        new(o.MaxBatchItems, o.MaxBatchCost, o.MaxWait.TotalMilliseconds, o.MaxQueuedItems);

    private static Stream OpenApiDocument() =>
        typeof(OperationsEndpoints).Assembly.GetManifestResourceStream("Funnel.Server.openapi.json")
        ?? throw new InvalidOperationException("the OpenAPI document is not embedded in Funnel.Server");

    private sealed record BatchingInfo(int MaxBatchItems, int MaxBatchTokens, double MaxWaitMs, int MaxQueuedItems);

    /// <summary>The bi-encoder; <c>query_prompt_name</c> and <c>document_prompt_name</c> are what <c>input_type</c> query and document pick.</summary>
    private sealed record EmbeddingInfo(string ModelId, Inference.ModelSource Source, string WeightsSha256, int Dimension, string Pooling, bool Normalize,
        int MaxInputLength, IReadOnlyDictionary<string, string> Prompts, string? QueryPromptName, string? DocumentPromptName, string? DefaultPromptName,
        BatchingInfo Batching);

    private sealed record RerankerInfo(string ModelId, Inference.ModelSource Source, string Activation, int MaxInputLength, BatchingInfo Batching);

    private sealed record ModelsInfo(EmbeddingInfo? Embedding, RerankerInfo? Reranker);

    private sealed record InfoResponse(
        string? ModelId, string? ModelSha, string ModelDtype, Dictionary<string, object>? ModelType,
        int? MaxConcurrentRequests, int? MaxInputLength, int? MaxBatchTokens, int? MaxBatchRequests,
        int MaxClientBatchSize, bool AutoTruncate, long MaxRequestBytes, string Version, ModelsInfo Models, bool Collections);
}
