using System.Text.Json;
using Funnel.Index;
using Funnel.Retrieval;
using Funnel.Server.Collections;
using Funnel.Server.Http;
using Funnel.Server.Models;

namespace Funnel.Server.Endpoints;

/// <summary>
/// <c>/collections</c>: create, list, describe and delete collections; add, upsert, read and delete documents (acknowledged
/// only once the collection's write-ahead log is fsynced); and retrieve-and-rerank search.
/// </summary>
internal static class CollectionEndpoints
{
    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapGet("/collections", (HttpContext http) =>
        {
            CollectionStore store = Store(http);
            var described = new List<object>();
            foreach (string name in store.Names())
            {
                try
                {
                    using CollectionLease lease = store.Use(name);
                    described.Add(Describe(lease.Collection));
                }
                catch (ApiException gone) when (gone.Kind == FunnelErrorKind.NotFound)
                {
                    // Deleted between listing and describing.
                }
                catch (ApiException problem) when (problem.Kind is FunnelErrorKind.Conflict or FunnelErrorKind.Corrupt or FunnelErrorKind.Unavailable)
                {
                    // One collection that cannot be opened is listed as such; it must not hide the others.
                    described.Add(new UnavailableCollectionBody(name, problem.Kind == FunnelErrorKind.Conflict ? "busy" : "unavailable", problem.Detail));
                }
            }
            return Results.Json(new CollectionList([.. described]), ApiJson.Options);
        });
        app.MapPost("/collections", (Delegate)CreateAsync); // a Delegate, so its IResult is written
        app.MapGet("/collections/{name}", (HttpContext http, string name) =>
        {
            using CollectionLease lease = Store(http).Use(name);
            return Results.Json(Describe(lease.Collection), ApiJson.Options);
        });
        app.MapDelete("/collections/{name}", async (HttpContext http, string name) =>
        {
            await Store(http).DeleteAsync(name);
            return Results.NoContent();
        });
        app.MapPost("/collections/{name}/documents", (HttpContext http, string name) => WriteAsync(http, name, upsert: false));
        app.MapPut("/collections/{name}/documents", (HttpContext http, string name) => WriteAsync(http, name, upsert: true));
        app.MapPost("/collections/{name}/documents/delete", DeleteDocumentsAsync);
        // {**id}: ids may hold '/', sent as is or as %2F (which the router would otherwise keep encoded); see DocumentId.
        app.MapGet("/collections/{name}/documents/{**id}", (HttpContext http, string name) =>
        {
            string id = DocumentId(http);
            using CollectionLease lease = Store(http).Use(name);
            Document document = lease.Collection.Collection.Get(id)
                ?? throw ApiException.NotFound($"collection '{name}' has no document '{id}'");
            return DocumentResult(document);
        });
        app.MapDelete("/collections/{name}/documents/{**id}", async (HttpContext http, string name) =>
        {
            string id = DocumentId(http);
            using CollectionLease lease = Store(http).Use(name);
            int deleted = await lease.Collection.Collection.DeleteAsync([id], http.RequestAborted);
            return deleted == 0 ? throw ApiException.NotFound($"collection '{name}' has no document '{id}'") : Results.NoContent();
        });
        app.MapPost("/collections/{name}/search", SearchAsync);
    }

    /// <summary>
    /// The document id of <c>/collections/{name}/documents/{id}</c>, decoded from the raw request target: the router leaves
    /// <c>%2F</c> encoded (so "a%2Fb" would not find "a/b") and decoding its value again would turn a literal "%2F" into "/".
    /// Everything after <c>documents/</c> is the id, so "a/b" unencoded works too.
    /// </summary>
    internal static string DocumentId(HttpContext http)
    {
        string raw = http.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpRequestFeature>()?.RawTarget ?? http.Request.Path.Value ?? "";
        if (raw.IndexOf('?') is var query and >= 0) raw = raw[..query];
        string[] segments = raw.Split('/', 5); // "", "collections", name, "documents", id
        string id = segments.Length == 5 ? Uri.UnescapeDataString(segments[4]) : "";
        return id.Length > 0 ? id : throw ApiException.Invalid("id", "the document id in the path is empty");
    }

    private static CollectionStore Store(HttpContext http) =>
        http.RequestServices.GetService<CollectionStore>()
        ?? throw ApiException.NotFound("this server has no collections; start it with --collections DIR");

    private static async Task<IResult> CreateAsync(HttpContext http)
    {
        CollectionStore store = Store(http);
        JsonBody body = await JsonBody.ReadAsync(http.Request, http.RequestAborted);
        string name = body.RequiredString("name");
        CollectionOptions options = ReadCollectionOptions(body, store.BiEncoder?.MaxDocumentTokens ?? 510);
        using CollectionLease created = store.Create(name, options);
        return Results.Json(Describe(created.Collection), ApiJson.Options, statusCode: StatusCodes.Status201Created);
    }

    /// <summary>A new collection's chunking and index settings from a create request (for a bi-encoder of <paramref name="window"/> wordpieces).</summary>
    internal static CollectionOptions ReadCollectionOptions(JsonBody body, int window)
    {
        string index = body.OptionalChoice("index", "hnsw", "flat") ?? "hnsw";
        ChunkingOptions defaults = Collection.DefaultChunking(window);
        int chunkTokens = body.OptionalInt("chunk_tokens", 1, window) ?? defaults.MaxTokens;
        int overlap = body.OptionalInt("chunk_overlap", 0, int.MaxValue) ?? Math.Min(defaults.OverlapTokens, chunkTokens / 2);
        var chunking = new ChunkingOptions { MaxTokens = chunkTokens, OverlapTokens = overlap };
        if (chunking.Problem() is { } problem)
        {
            string field = problem.Property == nameof(ChunkingOptions.MaxTokens) ? "chunk_tokens" : "chunk_overlap";
            throw ApiException.Invalid(field, $"'{field}': {problem.Message}");
        }
        var hnswDefaults = new HnswOptions();
        return new CollectionOptions
        {
            Chunking = chunking,
            VectorIndex = new VectorIndexSettings
            {
                Kind = index == "flat" ? VectorIndexKind.Flat : VectorIndexKind.Hnsw,
                Hnsw = new HnswOptions
                {
                    M = body.OptionalInt("hnsw_m", HnswOptions.MinM, HnswOptions.MaxM) ?? hnswDefaults.M,
                    EfConstruction = body.OptionalInt("ef_construction", 1, 100_000) ?? hnswDefaults.EfConstruction,
                    EfSearch = body.OptionalInt("ef_search", 1, 100_000) ?? hnswDefaults.EfSearch,
                    Quantization = body.OptionalChoice("quantization", "none", "int8") == "int8" ? VectorQuantization.Int8 : hnswDefaults.Quantization,
                },
            },
        };
    }

    private static async Task<IResult> WriteAsync(HttpContext http, string name, bool upsert)
    {
        using CollectionLease lease = Store(http).Use(name);
        ServedCollection served = lease.Collection;
        ServerOptions options = http.RequestServices.GetRequiredService<ServerOptions>();
        IReadOnlyList<Document> documents = ReadDocuments(await JsonBody.ReadAsync(http.Request, http.RequestAborted), options);
        BatchingEmbeddingGenerator embedder = http.RequestServices.GetRequiredService<ServedModels>().RequireEmbedder();

        Collection collection = served.Collection;
        // Checked before embedding to fail fast; AddAsync checks again, atomically with the write, for concurrent adds.
        if (!upsert)
            for (int i = 0; i < documents.Count; i++)
                if (collection.Get(documents[i].Id) is not null) throw Exists(name, documents[i].Id, i);
        var chunker = new DocumentEmbedder(embedder.Encoder, collection.Manifest.Chunking);
        IReadOnlyList<EmbeddedDocument> embedded = await Task.Run(() => chunker.Embed(documents, http.RequestAborted), http.RequestAborted);
        try
        {
            // The write returns once the batch is fsynced to the write-ahead log: only then is it acknowledged.
            long sequence = upsert ? await collection.UpsertAsync(embedded, http.RequestAborted) : await collection.AddAsync(embedded, http.RequestAborted);
            return Results.Json(new DocumentsWritten(documents.Count, sequence), ApiJson.Options);
        }
        catch (DocumentExistsException exists)
        {
            throw Exists(name, exists.DocumentId, exists.Index);
        }
    }

    private static ApiException Exists(string name, string id, int index) =>
        ApiException.Conflict($"collection '{name}' already has a document '{id}'; use PUT to replace it", $"documents[{index}].id");

    private static async Task<IResult> DeleteDocumentsAsync(HttpContext http, string name)
    {
        using CollectionLease lease = Store(http).Use(name);
        ServedCollection served = lease.Collection;
        JsonBody body = await JsonBody.ReadAsync(http.Request, http.RequestAborted);
        IReadOnlyList<string> ids = ReadIds(body, http.RequestServices.GetRequiredService<ServerOptions>());
        return Results.Json(new DocumentsDeleted(await served.Collection.DeleteAsync(ids, http.RequestAborted)), ApiJson.Options);
    }

    private static async Task<IResult> SearchAsync(HttpContext http, string name)
    {
        using CollectionLease lease = Store(http).Use(name);
        ServedCollection served = lease.Collection;
        ServedModels models = http.RequestServices.GetRequiredService<ServedModels>();
        var (query, searchOptions, reranker) = await ReadSearchAsync(http);
        // The library's pipeline over the models' batchers, so concurrent searches, /embed and /rerank share their batches.
        var pipeline = new SearchPipeline(served.Collection, models.Embedder, reranker);
        SearchResponse response = await pipeline.SearchAsync(query, searchOptions, http.RequestAborted);
        return Results.Json(SearchBodyOf(http, query, response), ApiJson.Options);
    }

    /// <summary>A search request: the query, its options, and the reranker when it reranks.</summary>
    internal static async Task<(string Query, SearchOptions Options, BatchingReranker? Reranker)> ReadSearchAsync(HttpContext http)
    {
        ServedModels models = http.RequestServices.GetRequiredService<ServedModels>();
        ServerOptions options = http.RequestServices.GetRequiredService<ServerOptions>();
        JsonBody body = await JsonBody.ReadAsync(http.Request, http.RequestAborted);
        string query = body.RequiredString("query");
        if (Document.QueryProblem(query) is { } blank) throw ApiException.Invalid("query", $"'query': {blank}");
        Retriever retriever = (body.OptionalChoice("retriever", "dense", "bm25", "hybrid") ?? "hybrid") switch
        {
            "dense" => Retriever.Dense,
            "bm25" => Retriever.Bm25,
            _ => Retriever.Hybrid,
        };
        int candidates = body.OptionalInt("candidates", 1, options.MaxInputsPerRequest) ?? Math.Min(100, options.MaxInputsPerRequest);
        int topK = body.OptionalInt("top_k", 1, 10_000) ?? 10;
        int rrfK = body.OptionalInt("rrf_k", 0, 100_000) ?? ReciprocalRankFusion.DefaultK;
        int? efSearch = body.OptionalInt("ef_search", 1, 100_000);
        bool rerank = body.OptionalBool("rerank", models.Reranker is not null);
        double rerankWeight = body.OptionalDouble("rerank_weight", 0, 1) ?? 1;
        TimeSpan? timeout = ModelEndpoints.ReadTimeout(body);
        // Without a deadline there is nothing to fall back from; with one, the client may prefer first-stage results to a 503.
        bool fallback = body.OptionalBool("rerank_fallback", false);
        if (fallback && timeout is null) throw ApiException.Invalid("rerank_fallback", "'rerank_fallback' applies when the rerank would miss the request's deadline: send 'timeout_ms' with it");
        IReadOnlyDictionary<string, string>? filter = body.OptionalStringMap("filter");
        if (retriever != Retriever.Bm25 && models.Embedder is null)
            throw ApiException.Invalid("retriever", $"{retriever.ToString().ToLowerInvariant()} retrieval needs a bi-encoder; this server has none (use \"bm25\", or start it with --bi-encoder)");
        BatchingReranker? reranker = rerank ? models.RequireReranker() : null;
        var searchOptions = new SearchOptions
        {
            Retriever = retriever,
            Candidates = candidates,
            Results = topK,
            Rerank = reranker is not null,
            RrfK = rrfK,
            RerankWeight = rerankWeight,
            Filter = filter is null ? null : new MetadataFilter(filter),
            EfSearch = efSearch,
            Timeout = timeout,
            // Asked for: the first stage's order, flagged, rather than no answer in time.
            RerankFallback = fallback,
        };
        return (query, searchOptions, reranker);
    }

    /// <summary>A search's answer (its stage times also go to /metrics); a sharded collection's adds its scatter and gather
    /// times and the shards it could not search.</summary>
    internal static object SearchBodyOf(HttpContext http, string query, SearchResponse response)
    {
        StageTimings t = response.Timings;
        http.RequestServices.GetRequiredService<Metrics.ServerMetrics>().RecordSearch(t);
        bool sharded = t.Scatter > TimeSpan.Zero || response.Unsearched.Count > 0;
        var timings = new Timings(t.Embed.TotalMilliseconds, t.Retrieve.TotalMilliseconds, t.Fuse.TotalMilliseconds, t.Rerank.TotalMilliseconds, t.Total.TotalMilliseconds,
            sharded ? t.Scatter.TotalMilliseconds : null, sharded ? t.Gather.TotalMilliseconds : null);
        string? fellBack = response.RerankSkipped;
        return new SearchBody(query, [.. response.Results.Select(Hit)], timings, fellBack is null ? null : false, fellBack, sharded ? [.. response.Unsearched] : null);
    }

    /// <summary>A delete request's ids, at most the request limit.</summary>
    internal static IReadOnlyList<string> ReadIds(JsonBody body, ServerOptions options)
    {
        IReadOnlyList<string> ids = body.RequiredStrings("ids");
        ModelEndpoints.CheckCount(ids.Count, "ids", options);
        return ids;
    }

    /// <summary>A write request's documents: at most the request limit, each id once.</summary>
    internal static IReadOnlyList<Document> ReadDocuments(JsonBody body, ServerOptions options)
    {
        IReadOnlyList<Document> documents = body.RequiredArray("documents", "documents", ReadDocument);
        ModelEndpoints.CheckCount(documents.Count, "documents", options);
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < documents.Count; i++)
            if (!seen.TryAdd(documents[i].Id, i))
                throw ApiException.Invalid($"documents[{i}].id", $"'documents[{i}].id' repeats the id \"{documents[i].Id}\" of documents[{seen[documents[i].Id]}]");
        return documents;
    }

    private static Document ReadDocument(JsonElement element, string path)
    {
        JsonBody document = JsonBody.Of(element, path);
        string id = document.RequiredString("id");
        string title = document.OptionalString("title") ?? "";
        string text = document.RequiredString("text", allowEmpty: true);
        IReadOnlyDictionary<string, string> metadata = Document.NoMetadata;
        if (document.TryGet("metadata", out JsonElement values))
        {
            if (values.ValueKind != JsonValueKind.Object) throw ApiException.Invalid($"{path}.metadata", $"'{path}.metadata' must be an object");
            metadata = values.EnumerateObject().ToDictionary(p => p.Name, p => Document.MetadataValue(p.Value), StringComparer.Ordinal);
        }
        // A document without title or text is kept, as `funnel index` keeps it (BEIR corpora hold some): one empty chunk.
        return new Document(id, title, text, metadata);
    }

    internal static IResult DocumentResult(Document document) =>
        Results.Json(new DocumentBody(document.Id, document.Title, document.Text, document.Metadata), ApiJson.Options);

    private static CollectionBody Describe(ServedCollection served)
    {
        Collection c = served.Collection;
        CollectionManifest manifest = c.Manifest;
        return new CollectionBody(served.Name, "ready", c.DocumentCount, c.ChunkCount, BiEncoderOf(manifest.BiEncoder),
            manifest.VectorIndex.Kind.ToString().ToLowerInvariant(), manifest.Chunking.MaxTokens, manifest.Chunking.OverlapTokens,
            manifest.Created, manifest.Updated);
    }

    /// <summary>A collection's bi-encoder as clients see it.</summary>
    internal static object BiEncoderOf(Inference.ModelFingerprint bi)
    {
        // A model folder is named, not located: the server's paths are not the client's business.
        string model = Path.IsPathRooted(bi.Model) ? Path.GetFileName(Path.TrimEndingDirectorySeparator(bi.Model)) : bi.Model;
        Inference.ModelSource? source = bi.Source is { Kind: Inference.ModelSourceKind.Folder } folder
            ? folder with { Id = Path.GetFileName(Path.TrimEndingDirectorySeparator(folder.Id)) }
            : bi.Source;
        return new BiEncoderBody(model, source, bi.WeightsSha256, bi.Dimension, bi.Pooling, bi.Normalize, bi.QueryPrompt, bi.DocumentPrompt);
    }

    private static SearchHit Hit(SearchResult r) => new(r.Rank, r.DocumentId, r.Title, r.Passage, r.Metadata, r.Score,
        r.DenseScore, r.DenseRank, r.Bm25Score, r.Bm25Rank, r.FusedScore, r.RerankScore, r.RerankLogit, r.BlendScore);

    /// <summary>Each entry a <see cref="CollectionBody"/> or, for one that cannot be opened, an <see cref="UnavailableCollectionBody"/>.</summary>
    private sealed record CollectionList(object[] Collections);

    /// <summary>A collection that cannot be served now: "busy" (another process writes it) or "unavailable" (damaged; the error names the file).</summary>
    private sealed record UnavailableCollectionBody(string Name, string State, string Error);

    /// <summary>The collection's bi-encoder as its manifest records it (source null for collections made before sources were).</summary>
    private sealed record BiEncoderBody(string Model, Inference.ModelSource? Source, string WeightsSha256, int Dimension, string Pooling, bool Normalize,
        string? QueryPrompt, string? DocumentPrompt);

    private sealed record CollectionBody(string Name, string State, int Documents, int Chunks, object BiEncoder, string VectorIndex,
        int ChunkTokens, int ChunkOverlap, DateTimeOffset Created, DateTimeOffset Updated);

    private sealed record DocumentBody(string Id, string Title, string Text, IReadOnlyDictionary<string, string> Metadata);

    private sealed record DocumentsWritten(int Written, long Sequence);

    private sealed record DocumentsDeleted(int Deleted);

    private sealed record SearchHit(int Rank, string Id, string Title, string Passage, IReadOnlyDictionary<string, string> Metadata,
        double Score, float? DenseScore, int? DenseRank, float? Bm25Score, int? Bm25Rank, double? FusedScore, float? RerankScore, float? RerankLogit,
        double? BlendScore);

    /// <summary><see cref="Scatter"/> and <see cref="Gather"/> (parts of <see cref="Retrieve"/>) only for a sharded collection.</summary>
    private sealed record Timings(double Embed, double Retrieve, double Fuse, double Rerank, double Total, double? Scatter = null, double? Gather = null);

    /// <summary><see cref="Reranked"/> is false (with why) only when the rerank was skipped for <c>rerank_fallback</c>; absent otherwise.
    /// <see cref="UnsearchedShards"/> (a sharded collection's only) lists shards with no live replica: the results are from the others.</summary>
    private sealed record SearchBody(string Query, SearchHit[] Results, Timings TimingsMs, bool? Reranked = null, string? FallbackReason = null,
        string[]? UnsearchedShards = null);
}
