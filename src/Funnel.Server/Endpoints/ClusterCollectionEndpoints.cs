using Funnel.Cluster;
using Funnel.Cluster.Coordination;
using Funnel.Cluster.Grains;
using Funnel.Retrieval;
using Funnel.Server.Collections;
using Funnel.Server.Http;
using Funnel.Server.Models;

namespace Funnel.Server.Endpoints;

/// <summary>
/// <c>/collections</c> on a cluster node (<c>funnel serve --cluster</c>): the single-node routes and bodies, over sharded,
/// replicated collections (<see cref="ClusterCollections"/>); any node answers any request. A create takes
/// <c>shards</c>, <c>replicas</c> and <c>write_quorum</c>; a description shows each shard's replicas, their nodes and state;
/// a write is acknowledged once every shard's quorum made it durable (else 503 naming the shards); a search says which
/// shards it could not search (<c>unsearched_shards</c>). Admin: <c>GET /collections/{name}/shards/{shard}</c> and
/// <c>POST /collections/{name}/shards/{shard}/repair</c>.
/// </summary>
internal static class ClusterCollectionEndpoints
{
    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapGet("/collections", (Delegate)((HttpContext http) => Run(async () =>
        {
            ClusterCollections cluster = Cluster(http);
            var described = new List<object>();
            foreach (ClusterLayout layout in await cluster.ListAsync(http.RequestAborted))
                described.Add(await DescribeAsync(cluster, layout, http.RequestAborted));
            return Results.Json(new CollectionList([.. described]), ApiJson.Options);
        })));
        app.MapPost("/collections", (Delegate)((HttpContext http) => Run(async () =>
        {
            ClusterCollections cluster = Cluster(http);
            JsonBody body = await JsonBody.ReadAsync(http.Request, http.RequestAborted);
            string name = body.RequiredString("name");
            CollectionStore.CheckName(name, "name");
            var sharding = new ShardingOptions
            {
                Shards = body.OptionalInt("shards", 1, ShardingOptions.MaxShards) ?? 1,
                Replicas = body.OptionalInt("replicas", 1, 16) ?? 1,
                WriteQuorum = body.OptionalInt("write_quorum", 1, 16),
            };
            CollectionOptions options = CollectionEndpoints.ReadCollectionOptions(body, cluster.BiEncoder?.MaxDocumentTokens ?? 510);
            ClusterLayout layout = await cluster.CreateAsync(name, sharding, options, http.RequestAborted);
            return Results.Json(await DescribeAsync(cluster, layout, http.RequestAborted), ApiJson.Options, statusCode: StatusCodes.Status201Created);
        })));
        app.MapGet("/collections/{name}", (HttpContext http, string name) => Run(async () =>
        {
            ClusterCollections cluster = Cluster(http);
            return Results.Json(await DescribeAsync(cluster, await cluster.LayoutAsync(name, http.RequestAborted), http.RequestAborted), ApiJson.Options);
        }));
        app.MapDelete("/collections/{name}", (HttpContext http, string name) => Run(async () =>
        {
            await Cluster(http).DeleteCollectionAsync(name, http.RequestAborted);
            return Results.NoContent();
        }));
        app.MapPost("/collections/{name}/documents", (HttpContext http, string name) => Run(() => WriteAsync(http, name, replace: false)));
        app.MapPut("/collections/{name}/documents", (HttpContext http, string name) => Run(() => WriteAsync(http, name, replace: true)));
        app.MapPost("/collections/{name}/documents/delete", (HttpContext http, string name) => Run(async () =>
        {
            JsonBody body = await JsonBody.ReadAsync(http.Request, http.RequestAborted);
            IReadOnlyList<string> ids = CollectionEndpoints.ReadIds(body, http.RequestServices.GetRequiredService<ServerOptions>());
            ClusterWriteResult deleted = await Cluster(http).DeleteAsync(name, ids, http.RequestAborted);
            return Results.Json(new DocumentsDeleted(deleted.Count, Acks(deleted)), ApiJson.Options);
        }));
        app.MapGet("/collections/{name}/documents/{**id}", (HttpContext http, string name) => Run(async () =>
        {
            string id = CollectionEndpoints.DocumentId(http);
            Document document = await Cluster(http).GetAsync(name, id, http.RequestAborted)
                ?? throw ApiException.NotFound($"collection '{name}' has no document '{id}'");
            return CollectionEndpoints.DocumentResult(document);
        }));
        app.MapDelete("/collections/{name}/documents/{**id}", (HttpContext http, string name) => Run(async () =>
        {
            string id = CollectionEndpoints.DocumentId(http);
            ClusterWriteResult deleted = await Cluster(http).DeleteAsync(name, [id], http.RequestAborted);
            return deleted.Count == 0 ? throw ApiException.NotFound($"collection '{name}' has no document '{id}'") : Results.NoContent();
        }));
        app.MapPost("/collections/{name}/search", (HttpContext http, string name) => Run(async () =>
        {
            ClusterCollections cluster = Cluster(http);
            var (query, options, reranker) = await CollectionEndpoints.ReadSearchAsync(http);
            SearchResponse response = await cluster.SearchAsync(name, query, options, reranker, http.RequestAborted);
            return Results.Json(CollectionEndpoints.SearchBodyOf(http, query, response), ApiJson.Options);
        }));
        app.MapGet("/collections/{name}/shards/{shard}", (HttpContext http, string name, string shard) => Run(async () =>
            Results.Json(Shard(await Cluster(http).ShardStatusAsync(name, ShardNumber(shard), http.RequestAborted)), ApiJson.Options)));
        app.MapPost("/collections/{name}/shards/{shard}/repair", (HttpContext http, string name, string shard) => Run(async () =>
            Results.Json(Shard(await Cluster(http).RepairAsync(name, ShardNumber(shard), http.RequestAborted)), ApiJson.Options)));
    }

    private static ClusterCollections Cluster(HttpContext http) => http.RequestServices.GetRequiredService<ClusterCollections>();

    private static async Task<IResult> WriteAsync(HttpContext http, string name, bool replace)
    {
        ServerOptions options = http.RequestServices.GetRequiredService<ServerOptions>();
        IReadOnlyList<Document> documents = CollectionEndpoints.ReadDocuments(await JsonBody.ReadAsync(http.Request, http.RequestAborted), options);
        http.RequestServices.GetRequiredService<ServedModels>().RequireEmbedder();
        ClusterWriteResult written = await Cluster(http).UpsertAsync(name, documents, replace, http.RequestAborted);
        return Results.Json(new DocumentsWritten(written.Count, Acks(written)), ApiJson.Options);
    }

    /// <summary>A shard in an admin path: its number, else 400 (an unknown number is 404, from the coordinator).</summary>
    private static int ShardNumber(string shard) =>
        int.TryParse(shard, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int n) ? n
            : throw ApiException.Invalid("shard", $"shard \"{shard}\" is not a shard number (0, 1, ...)");

    /// <summary>The coordinator's errors as the service's problems: 400, 404, 409 and 503 (with Retry-After).</summary>
    private static async Task<IResult> Run(Func<Task<IResult>> handle)
    {
        try
        {
            return await handle();
        }
        catch (ClusterException e)
        {
            throw e.Problem switch
            {
                ClusterProblem.Invalid => ApiException.Invalid(e.Field ?? "", e.Message),
                ClusterProblem.NotFound => ApiException.NotFound(e.Message),
                ClusterProblem.Conflict => ApiException.Conflict(e.Message, e.Field),
                _ => new ApiException(FunnelErrorKind.Unavailable, e.Message, title: "Shard unavailable") { RetryAfterSeconds = 5 },
            };
        }
    }

    private static async Task<object> DescribeAsync(ClusterCollections cluster, ClusterLayout layout, CancellationToken ct)
    {
        IReadOnlyList<ShardStatus> shards = await cluster.StatusAsync(layout.Name, ct);
        CollectionManifest settings = layout.SettingsManifest();
        // A shard's documents as its in-sync replicas count them (they agree); unknown while none is in sync.
        int? Count(ShardStatus s) => s.Replicas.FirstOrDefault(r => r.State == "in-sync")?.Position?.Documents;
        int?[] counts = [.. shards.Select(Count)];
        string state = shards.All(s => s.Replicas.Any(r => r.State == "in-sync")) ? "ready" : "degraded";
        return new ClusterCollectionBody(layout.Name, state, counts.All(c => c is not null) ? counts.Sum() : null,
            CollectionEndpoints.BiEncoderOf(settings.BiEncoder), settings.VectorIndex.Kind.ToString().ToLowerInvariant(), settings.Chunking.MaxTokens,
            settings.Chunking.OverlapTokens, layout.Created, layout.Shards, layout.Replicas, layout.WriteQuorum, [.. shards.Select(Shard)]);
    }

    private static ShardBody Shard(ShardStatus s) =>
        new(s.Shard, s.Name, [.. s.Replicas.Select(r => new ReplicaBody(r.Node, r.State, r.Position?.Sequence, r.Position?.Documents))]);

    private static Dictionary<string, long> Acks(ClusterWriteResult result) => result.Shards.ToDictionary(a => a.Key, a => a.Value.Sequence);

    private sealed record CollectionList(object[] Collections);

    private sealed record ClusterCollectionBody(string Name, string State, int? Documents, object BiEncoder, string VectorIndex, int ChunkTokens, int ChunkOverlap,
        DateTimeOffset Created, int Shards, int Replicas, int WriteQuorum, ShardBody[] Placement);

    /// <summary>A replica's state: in-sync (serves reads and writes), catching-up (reachable, being copied to) or down.</summary>
    private sealed record ReplicaBody(string Node, string State, long? Batch, int? Documents);

    private sealed record ShardBody(int Shard, string Name, ReplicaBody[] Replicas);

    /// <summary><see cref="Sequences"/>: per shard written to, the batch number its write got.</summary>
    private sealed record DocumentsWritten(int Written, Dictionary<string, long> Sequences);

    private sealed record DocumentsDeleted(int Deleted, Dictionary<string, long> Sequences);
}
