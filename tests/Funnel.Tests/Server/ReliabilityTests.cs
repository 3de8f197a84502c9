using System.Net;
using System.Text.Json;
using Funnel.Inference;
using Funnel.Server;
using Funnel.Tests.Inference;

namespace Funnel.Tests.Server;

/// <summary>
/// Issue 11, reliability defects over HTTP: non-finite model output (1), a corrupt collection among good ones (3),
/// chunk options the library rejects (4), collection names and document ids (6), and the server's absolute paths (9).
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class ReliabilityTests(SmallModels models) : IAsyncLifetime
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), $"funnel-server-reliability-{Guid.NewGuid():N}");
    private RunningServer _server = null!;

    public async Task InitializeAsync() =>
        _server = await RunningServer.StartAsync(models.Both, new ServerOptions { CollectionsDirectory = _root });

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }

    /// <summary>
    /// A small random model with one huge but finite weight: it loads (the weights are finite), and its forward pass
    /// overflows float32 into NaN for every input.
    /// </summary>
    internal static string OverflowingModel(string folder, bool crossEncoder)
    {
        SeededCheckpoint.Write(folder, TestPaths.SharedModel(crossEncoder ? "ms-marco-MiniLM-L-6-v2" : "all-MiniLM-L6-v2"), seed: 5,
            new SeededCheckpointOptions { Architecture = CheckpointArchitecture.Small, CrossEncoder = crossEncoder });
        string weights = Path.Combine(folder, "model.safetensors");
        string tensor;
        using (var file = Funnel.Inference.Weights.SafeTensorsFile.Open(weights))
            tensor = file.Tensors.Keys.Single(name => name.EndsWith("embeddings.LayerNorm.weight", StringComparison.Ordinal));
        SafeTensorsEditing.AddToElement(weights, tensor, 0, 3e38f);
        return folder;
    }

    [Fact]
    public async Task Defect1_NonFiniteModelOutputIs422AndAFailedAddWritesNothing()
    {
        string dir = Path.Combine(_root, "..", $"overflow-{Guid.NewGuid():N}");
        try
        {
            using SentenceEncoder bi = SentenceEncoder.Load(OverflowingModel(Path.Combine(dir, "bi"), crossEncoder: false));
            using CrossEncoder cross = CrossEncoder.Load(OverflowingModel(Path.Combine(dir, "cross"), crossEncoder: true),
                new EncoderOptions { Activation = ScoreActivation.Identity });
            string collections = Path.Combine(dir, "collections");
            await using RunningServer server = await RunningServer.StartAsync(new ServerModels(bi, "bad/bi", cross, "bad/cross"),
                new ServerOptions { CollectionsDirectory = collections });

            Http.AssertProblem(await server.Client.PostAsync("/embed", new { inputs = new[] { "hello" } }), HttpStatusCode.UnprocessableEntity, mentions: "NaN");
            Http.AssertProblem(await server.Client.PostAsync("/v1/embeddings", new { input = "hello" }), HttpStatusCode.UnprocessableEntity, mentions: "bi-encoder");
            Http.AssertProblem(await server.Client.PostAsync("/rerank", new { query = "q", texts = new[] { "a", "b" } }), HttpStatusCode.UnprocessableEntity, mentions: "cross-encoder");

            Assert.Equal(HttpStatusCode.Created, (await server.Client.PostAsync("/collections", new { name = "c", index = "flat" })).Status);
            Reply add = await server.Client.PostAsync("/collections/c/documents", new { documents = new[] { new { id = "d1", text = "some text" } } });
            Http.AssertProblem(add, HttpStatusCode.UnprocessableEntity, mentions: "NaN");
            Http.AssertProblem(await server.Client.GetReplyAsync("/collections/c/documents/d1"), HttpStatusCode.NotFound);
            Assert.Equal(0, (await server.Client.GetReplyAsync("/collections/c")).Json.GetProperty("documents").GetInt32());
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task Defect3_ACorruptCollectionIsListedWithItsStateAndItsRoutesNameTheFile()
    {
        foreach (string name in new[] { "good", "bad" })
        {
            Assert.Equal(HttpStatusCode.Created, (await _server.Client.PostAsync("/collections", new { name, index = "flat" })).Status);
            foreach (string id in new[] { "x", "y", "z" })
                Assert.Equal(HttpStatusCode.OK, (await _server.Client.PutAsync($"/collections/{name}/documents", new { documents = new[] { new { id, text = $"text {id}" } } })).Status);
        }
        // Close both (a server restart), then flip a byte in "bad"'s first logged batch: acknowledged batches follow it.
        await _server.DisposeAsync();
        string log = Path.Combine(_root, "bad", "wal-000000.log");
        byte[] bytes = File.ReadAllBytes(log);
        bytes[24 + 20] ^= 0x08;
        File.WriteAllBytes(log, bytes);
        _server = await RunningServer.StartAsync(models.Both, new ServerOptions { CollectionsDirectory = _root });

        Reply list = await _server.Client.GetReplyAsync("/collections");
        Assert.Equal(HttpStatusCode.OK, list.Status);
        JsonElement[] listed = [.. list.Json.GetProperty("collections").EnumerateArray()];
        Assert.Equal(["bad", "good"], listed.Select(c => c.GetProperty("name").GetString()));
        Assert.Equal("unavailable", listed[0].GetProperty("state").GetString());
        Assert.Contains("wal-000000.log", listed[0].GetProperty("error").GetString());
        Assert.Equal("ready", listed[1].GetProperty("state").GetString());
        Assert.Equal(3, listed[1].GetProperty("documents").GetInt32());
        Assert.DoesNotContain(_root, list.Text);

        foreach (Reply reply in new[]
                 {
                     await _server.Client.GetReplyAsync("/collections/bad"),
                     await _server.Client.PostAsync("/collections/bad/search", new { query = "text" }),
                     await _server.Client.GetReplyAsync("/collections/bad/documents/x"),
                 })
        {
            JsonElement problem = Http.AssertProblem(reply, HttpStatusCode.InternalServerError, mentions: "wal-000000.log' is corrupt at byte 24");
            Assert.Contains("funnel collection recover", problem.GetProperty("detail").GetString());
            Assert.DoesNotContain(_root, reply.Text);
        }
        Assert.Equal(HttpStatusCode.OK, (await _server.Client.GetReplyAsync("/collections/good/documents/y")).Status);
    }

    [Theory]
    [InlineData(4, null, "chunk_tokens", "at least 8")]
    [InlineData(50, 40, "chunk_overlap", "half the chunk size, 25")]
    public async Task Defect4_ChunkOptionsTheLibraryRejectsAre400NamingTheField(int tokens, int? overlap, string field, string mentions)
    {
        Reply reply = overlap is { } o
            ? await _server.Client.PostAsync("/collections", new { name = "u5", chunk_tokens = tokens, chunk_overlap = o })
            : await _server.Client.PostAsync("/collections", new { name = "u3", chunk_tokens = tokens });
        Http.AssertProblem(reply, HttpStatusCode.BadRequest, field, mentions);
        Assert.False(Directory.Exists(Path.Combine(_root, overlap is null ? "u3" : "u5")));
    }

    [Theory]
    [InlineData("docs\n")]
    [InlineData("docs\r")]
    [InlineData("a/b")]
    [InlineData("a\\b")]
    [InlineData("..")]
    [InlineData("tab\there")]
    [InlineData("")]
    public async Task Defect6_CollectionNamesFollowOneStrictRule(string name)
    {
        Http.AssertProblem(await _server.Client.PostAsync("/collections", new { name }), HttpStatusCode.BadRequest, "name");
        Assert.Empty(Directory.EnumerateFileSystemEntries(_root));
    }

    [Fact]
    public async Task Defect6_DocumentIdsWithSlashesAndPercentSignsCanBeReadAndDeleted()
    {
        Assert.Equal(HttpStatusCode.Created, (await _server.Client.PostAsync("/collections", new { name = "ids", index = "flat" })).Status);
        string[] ids = ["a/b", "dir/sub/leaf", "100%", "x%2Fy", "q?uery#frag", "plain"];
        Reply written = await _server.Client.PostAsync("/collections/ids/documents", new { documents = ids.Select(id => new { id, text = $"text of {id}" }).ToArray() });
        Assert.Equal(HttpStatusCode.OK, written.Status);
        foreach (string id in ids)
        {
            Reply read = await _server.Client.GetReplyAsync($"/collections/ids/documents/{Uri.EscapeDataString(id)}");
            Assert.True(read.Status == HttpStatusCode.OK, $"{id}: {read.Text}");
            Assert.Equal(id, read.Json.GetProperty("id").GetString());
        }
        // A '/' sent unencoded works too.
        Assert.Equal("dir/sub/leaf", (await _server.Client.GetReplyAsync("/collections/ids/documents/dir/sub/leaf")).Json.GetProperty("id").GetString());
        foreach (string id in ids)
            Assert.Equal(HttpStatusCode.NoContent, (await _server.Client.SendReplyAsync(new HttpRequestMessage(HttpMethod.Delete, $"/collections/ids/documents/{Uri.EscapeDataString(id)}"))).Status);
        Assert.Equal(0, (await _server.Client.GetReplyAsync("/collections/ids")).Json.GetProperty("documents").GetInt32());
    }

    [Fact]
    public async Task Defect9_EmptyDocumentsAndNestedMetadataAreKeptAsByTheCli()
    {
        Assert.Equal(HttpStatusCode.Created, (await _server.Client.PostAsync("/collections", new { name = "rules", index = "flat" })).Status);
        Reply written = await _server.Client.PostRawAsync("/collections/rules/documents",
            """{"documents": [{"id": "a", "title": "", "text": "", "metadata": {"n": 3, "tags": ["x", "y"]}}]}""");
        Assert.Equal(HttpStatusCode.OK, written.Status);
        JsonElement metadata = (await _server.Client.GetReplyAsync("/collections/rules/documents/a")).Json.GetProperty("metadata");
        Assert.Equal("3", metadata.GetProperty("n").GetString());
        Assert.Equal("""["x", "y"]""", metadata.GetProperty("tags").GetString());
        Http.AssertProblem(await _server.Client.PostAsync("/collections/rules/search", new { query = "  " }), HttpStatusCode.BadRequest, "query", "only whitespace");
    }

    [Fact]
    public async Task Defect9_ResponsesAndConflictsShowNoAbsoluteServerPaths()
    {
        Assert.Equal(HttpStatusCode.Created, (await _server.Client.PostAsync("/collections", new { name = "p" })).Status);
        Reply described = await _server.Client.GetReplyAsync("/collections/p");
        Reply listed = await _server.Client.GetReplyAsync("/collections");
        foreach (Reply reply in new[] { described, listed })
        {
            Assert.DoesNotContain(_root, reply.Text);
            Assert.DoesNotContain(models.BiEncoderFolder, reply.Text);
        }
        Assert.Equal("bi", described.Json.GetProperty("bi_encoder").GetProperty("model").GetString());

        // Another process holds the writer lock of a collection this server has not opened yet: 409, no path.
        await _server.DisposeAsync();
        _server = await RunningServer.StartAsync(models.Both, new ServerOptions { CollectionsDirectory = _root });
        using (Funnel.Retrieval.Collection.Open(Path.Combine(_root, "p")))
        {
            Reply busy = await _server.Client.GetReplyAsync("/collections/p");
            Http.AssertProblem(busy, HttpStatusCode.Conflict, mentions: "another process");
            Assert.DoesNotContain(_root, busy.Text);
            JsonElement entry = Assert.Single((await _server.Client.GetReplyAsync("/collections")).Json.GetProperty("collections").EnumerateArray());
            Assert.Equal("busy", entry.GetProperty("state").GetString());
        }
    }
}

internal static class ReliabilityHttp
{
    public static Task<Reply> PutAsync(this HttpClient client, string path, object body) =>
        client.SendReplyAsync(new HttpRequestMessage(HttpMethod.Put, path) { Content = new StringContent(JsonSerializer.Serialize(body), System.Text.Encoding.UTF8, "application/json") });
}
