using System.Runtime.InteropServices;
using System.Text.Json;
using Funnel.Inference;
using Funnel.Server.Http;
using Funnel.Server.Models;
using Microsoft.Extensions.AI;

namespace Funnel.Server.Endpoints;

/// <summary>
/// The model routes, wire-compatible with Hugging Face text-embeddings-inference (<c>/embed</c>, <c>/rerank</c>),
/// OpenAI (<c>/v1/embeddings</c>) and Cohere/Jina (<c>/v1/rerank</c>).
/// </summary>
internal static class ModelEndpoints
{
    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapPost("/embed", EmbedAsync);
        app.MapPost("/rerank", RerankAsync);
        app.MapPost("/v1/embeddings", OpenAiEmbeddingsAsync);
        app.MapPost("/v1/rerank", CohereRerankAsync);
    }

    private static async Task<IResult> EmbedAsync(HttpContext http, ServedModels models, ServerOptions options)
    {
        BatchingEmbeddingGenerator embedder = models.RequireEmbedder();
        JsonBody body = await JsonBody.ReadAsync(http.Request, http.RequestAborted);
        IReadOnlyList<string> inputs = body.StringOrStrings("inputs", out _);
        CheckCount(inputs.Count, "inputs", options);
        bool normalize = body.OptionalBool("normalize", true);
        // TEI: prompt_name names one of the model's prompts; without it, the model's default prompt (usually none) applies.
        var settings = new SentenceEmbeddingOptions
        {
            PromptName = KnownPrompt(embedder, body.OptionalString("prompt_name")), Normalize = normalize, Truncate = ReadTruncate(body, options),
            Timeout = ReadTimeout(body),
        };
        GeneratedEmbeddings<Embedding<float>> output = await GenerateAsync(embedder, inputs, "inputs", settings, http.RequestAborted);
        return Results.Json(output.Select(e => e.Vector.ToArray()), ApiJson.Options);
    }

    private static async Task<IResult> OpenAiEmbeddingsAsync(HttpContext http, ServedModels models, ServerOptions options)
    {
        BatchingEmbeddingGenerator embedder = models.RequireEmbedder();
        JsonBody body = await JsonBody.ReadAsync(http.Request, http.RequestAborted);
        if (body.TryGet("input", out JsonElement input) && input.ValueKind == JsonValueKind.Array
            && input.EnumerateArray().Any(e => e.ValueKind is JsonValueKind.Number or JsonValueKind.Array))
            throw ApiException.Invalid("input", "'input' holds token ids; this server takes text only: send a string or an array of strings");
        IReadOnlyList<string> inputs = body.StringOrStrings("input", out _);
        CheckCount(inputs.Count, "input", options);
        string format = body.OptionalChoice("encoding_format", "float", "base64") ?? "float";
        if (body.OptionalInt("dimensions", 1, int.MaxValue) is { } dimensions && dimensions != embedder.Dimension)
            throw ApiException.Invalid("dimensions", $"{embedder.Id} produces {embedder.Dimension}-dimensional embeddings and cannot shorten them; omit 'dimensions' or send {embedder.Dimension}");
        body.OptionalString("model"); // any name is accepted (clients insist on sending one); the response names the real model
        body.OptionalString("user");
        // Not in OpenAI's API (its models need no roles); the name other embedding APIs (Cohere, Voyage, NVIDIA) give the field.
        EmbeddingRole role = body.OptionalChoice("input_type", "query", "document") switch
        {
            "query" => EmbeddingRole.Query,
            "document" => EmbeddingRole.Document,
            _ => EmbeddingRole.Default,
        };

        var settings = new SentenceEmbeddingOptions { Role = role, Truncate = ReadTruncate(body, options), Timeout = ReadTimeout(body) };
        GeneratedEmbeddings<Embedding<float>> output = await GenerateAsync(embedder, inputs, "input", settings, http.RequestAborted);
        var data = new OpenAiEmbedding[output.Count];
        for (int i = 0; i < data.Length; i++)
        {
            ReadOnlyMemory<float> vector = output[i].Vector;
            data[i] = new OpenAiEmbedding("embedding", i, format == "base64" ? Base64LittleEndian(vector.Span) : vector.ToArray());
        }
        int tokens = (int)(output.Usage?.InputTokenCount ?? 0);
        return Results.Json(new OpenAiEmbeddingList("list", data, embedder.Id, new OpenAiUsage(tokens, tokens)), ApiJson.Options);
    }

    private static async Task<IResult> RerankAsync(HttpContext http, ServedModels models, ServerOptions options)
    {
        BatchingReranker reranker = models.RequireReranker();
        JsonBody body = await JsonBody.ReadAsync(http.Request, http.RequestAborted);
        string query = body.RequiredString("query");
        IReadOnlyList<string> texts = body.RequiredStrings("texts");
        CheckCount(texts.Count, "texts", options);
        bool raw = body.OptionalBool("raw_scores", false);
        bool returnText = body.OptionalBool("return_text", false);
        bool truncate = ReadTruncate(body, options);

        RerankScores scored = await ScoreAsync(reranker, query, texts, "texts", new RerankOptions { Truncate = truncate, Timeout = ReadTimeout(body) }, http.RequestAborted);
        var ranks = new TeiRank[texts.Count];
        for (int i = 0; i < ranks.Length; i++) ranks[i] = new TeiRank(i, returnText ? texts[i] : null, Probability(scored, i, raw));
        return Results.Json(Ranked(ranks, r => r.Score), ApiJson.Options);
    }

    private static async Task<IResult> CohereRerankAsync(HttpContext http, ServedModels models, ServerOptions options)
    {
        BatchingReranker reranker = models.RequireReranker();
        JsonBody body = await JsonBody.ReadAsync(http.Request, http.RequestAborted);
        string query = body.RequiredString("query");
        IReadOnlyList<string> documents = body.RequiredArray("documents", "strings or objects with a \"text\" field", ReadDocumentText);
        CheckCount(documents.Count, "documents", options);
        int topN = body.OptionalInt("top_n", 1, int.MaxValue) ?? documents.Count;
        bool returnDocuments = body.OptionalBool("return_documents", false);
        body.OptionalString("model");

        RerankScores scored = await ScoreAsync(reranker, query, documents, "documents",
            new RerankOptions { Truncate = ReadTruncate(body, options), Timeout = ReadTimeout(body) }, http.RequestAborted);
        var results = new CohereResult[documents.Count];
        for (int i = 0; i < results.Length; i++)
            results[i] = new CohereResult(i, Probability(scored, i, raw: false), returnDocuments ? new CohereDocument(documents[i]) : null);
        CohereResult[] top = Ranked(results, r => r.RelevanceScore).Take(topN).ToArray();
        return Results.Json(new CohereRerankResponse(Guid.NewGuid().ToString(), reranker.Id, top,
            new CohereUsage((int)scored.Tokens)), ApiJson.Options);

        static string ReadDocumentText(JsonElement element, string path) => element.ValueKind switch
        {
            JsonValueKind.String => JsonBody.Text(element, path),
            JsonValueKind.Object => JsonBody.Of(element, path).RequiredString("text", allowEmpty: true),
            _ => throw ApiException.Invalid(path, $"'{path}' must be a string or an object with a \"text\" field, got {JsonBody.Describe(element)}"),
        };
    }

    /// <summary>Embeds through the batcher; an input over the window (without truncation) is a 413 naming it.</summary>
    internal static async Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(BatchingEmbeddingGenerator embedder, IReadOnlyList<string> texts, string field,
        SentenceEmbeddingOptions settings, CancellationToken cancellationToken)
    {
        try
        {
            return await embedder.GenerateAsync(texts, settings.ToGenerationOptions(), cancellationToken);
        }
        catch (InputTooLongException e)
        {
            throw TooLong(e, field);
        }
    }

    /// <summary>Scores every text against the query through the batcher; an input over the window (without truncation) is a 413 naming it.</summary>
    private static async Task<RerankScores> ScoreAsync(BatchingReranker reranker, string query, IReadOnlyList<string> texts, string field,
        RerankOptions options, CancellationToken cancellationToken)
    {
        try
        {
            return await reranker.ScoreAsync(query, texts, options, cancellationToken);
        }
        catch (InputTooLongException e)
        {
            throw TooLong(e, field);
        }
    }

    private static ApiException TooLong(InputTooLongException e, string field) => ApiException.TooLarge(
        $"'{field}[{e.Index}]' is {e.Tokens} tokens long, more than this model's {e.MaxTokens}; shorten it or send \"truncate\": true", $"{field}[{e.Index}]");

    /// <summary>TEI's and Cohere's rerank score: the logit when <paramref name="raw"/>, else its sigmoid, whatever the model's activation.</summary>
    private static float Probability(RerankScores scores, int i, bool raw) => raw ? scores.Logits[i] : Scores.Sigmoid(scores.Logits[i]);

    /// <summary>The <c>prompt_name</c> a client sent, refused with the model's prompts listed when it has no such prompt.</summary>
    private static string? KnownPrompt(BatchingEmbeddingGenerator embedder, string? name)
    {
        IReadOnlyDictionary<string, string> prompts = embedder.Encoder.Prompts;
        if (name is null || prompts.ContainsKey(name)) return name;
        throw ApiException.Invalid("prompt_name", $"'prompt_name' is \"{name}\", which is not one of {embedder.Id}'s prompts " +
            $"({(prompts.Count == 0 ? "it has none" : string.Join(", ", prompts.Keys.Select(k => $"\"{k}\"")))})");
    }

    /// <summary>In <see cref="ScoreOrder"/>: best first, ties in input order.</summary>
    private static T[] Ranked<T>(T[] items, Func<T, float> score) => [.. ScoreOrder.BestFirst([.. items.Select(score)]).Select(i => items[i])];

    internal static void CheckCount(int count, string field, ServerOptions options)
    {
        if (count > options.MaxInputsPerRequest)
            throw ApiException.TooLarge($"'{field}' has {count} items, more than this server's limit of {options.MaxInputsPerRequest} per request (max_client_batch_size in GET /info); split the request", field);
    }

    /// <summary>The request's optional deadline, <c>timeout_ms</c>: the server refuses (503) rather than answer later.</summary>
    internal static TimeSpan? ReadTimeout(JsonBody body) =>
        body.OptionalInt("timeout_ms", 1, 3_600_000) is { } ms ? TimeSpan.FromMilliseconds(ms) : null;

    internal static bool ReadTruncate(JsonBody body, ServerOptions options)
    {
        string? direction = body.OptionalChoice("truncation_direction", "right", "left");
        if (direction == "left")
            throw ApiException.Invalid("truncation_direction", "only right truncation (dropping the end of long inputs) is supported");
        return body.OptionalBool("truncate", options.AutoTruncate);
    }

    private static string Base64LittleEndian(ReadOnlySpan<float> vector)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("base64 embeddings are produced on little-endian hosts only");
        return Convert.ToBase64String(MemoryMarshal.AsBytes(vector));
    }

    private sealed record TeiRank(int Index, string? Text, float Score);

    private sealed record OpenAiEmbedding(string Object, int Index, object Embedding);

    private sealed record OpenAiUsage(int PromptTokens, int TotalTokens);

    private sealed record OpenAiEmbeddingList(string Object, OpenAiEmbedding[] Data, string Model, OpenAiUsage Usage);

    private sealed record CohereDocument(string Text);

    private sealed record CohereResult(int Index, float RelevanceScore, CohereDocument? Document);

    private sealed record CohereUsage(int TotalTokens);

    private sealed record CohereRerankResponse(string Id, string Model, CohereResult[] Results, CohereUsage Usage);
}
