using System.Net;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace Funnel.Tests.Server;

/// <summary>Every model route's happy path, checked against the encoders called directly.</summary>
[Collection(ServerCollection.Name)]
public sealed class ModelEndpointTests(SmallModels models) : IAsyncLifetime
{
    private static readonly string[] Texts =
    [
        "This is an example sentence",
        "Each sentence is converted.",
        "Café déjà vu — 東京",
        "Berlin had a population of 3,520,031 registered inhabitants in an area of 891.82 square kilometers.",
        "",
    ];

    private const string Query = "How many people live in Berlin?";

    private RunningServer _server = null!;

    public async Task InitializeAsync() => _server = await RunningServer.StartAsync(models.Both);

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private static void AssertClose(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], actual[i], 1e-6f);
    }

    [Fact]
    public async Task EmbedMatchesTheLibraryForASingleStringAndABatch()
    {
        float[][] expected = models.BiEncoder.Encode(Texts);

        Reply single = await _server.Client.PostAsync("/embed", new { inputs = Texts[0] });
        Assert.Equal(HttpStatusCode.OK, single.Status);
        JsonElement only = Assert.Single(single.Json.EnumerateArray());
        AssertClose(expected[0], Http.Floats(only));

        Reply batch = await _server.Client.PostAsync("/embed", new { inputs = Texts, normalize = true, truncate = false });
        Assert.Equal(HttpStatusCode.OK, batch.Status);
        JsonElement[] rows = [.. batch.Json.EnumerateArray()];
        Assert.Equal(Texts.Length, rows.Length);
        for (int i = 0; i < rows.Length; i++)
        {
            float[] row = Http.Floats(rows[i]);
            Assert.Equal(models.BiEncoder.Dimension, row.Length);
            AssertClose(expected[i], row);
        }
    }

    [Fact]
    public void PooledVectorsNormalizedAreExactlyTheEncoderOutput()
    {
        // The batcher computes pooled vectors and normalises per request: that must be bit-identical to Encode.
        float[][] pooled = models.BiEncoder.EncodePooled(Texts);
        float[][] encoded = models.BiEncoder.Encode(Texts);
        for (int i = 0; i < Texts.Length; i++)
        {
            Funnel.Inference.SentenceEncoder.NormalizeInPlace(pooled[i]);
            Assert.Equal(encoded[i], pooled[i]);
        }
    }

    [Fact]
    public async Task EmbedWithoutNormalizeReturnsThePooledVectors()
    {
        Assert.True(models.BiEncoder.Normalize, "the served test model should end in a Normalize module");
        float[][] pooled = models.BiEncoder.EncodePooled(Texts);
        float[][] unit = models.BiEncoder.Encode(Texts);
        Reply raw = await _server.Client.PostAsync("/embed", new { inputs = Texts, normalize = false });
        Assert.Equal(HttpStatusCode.OK, raw.Status);
        JsonElement[] rows = [.. raw.Json.EnumerateArray()];
        for (int i = 0; i < rows.Length; i++)
        {
            float[] row = Http.Floats(rows[i]);
            AssertClose(pooled[i], row);
            // Not unit length, and the same direction as the normalized embedding.
            float norm = System.Numerics.Tensors.TensorPrimitives.Norm(row);
            Assert.True(MathF.Abs(norm - 1) > 1e-3f, $"row {i} has norm {norm}");
            AssertClose(unit[i], [.. row.Select(x => x / norm)]);
        }
    }

    [Fact]
    public async Task OpenAiEmbeddingsMatchInFloatAndBase64()
    {
        string[] inputs = Texts[..3];
        float[][] expected = models.BiEncoder.Encode(inputs);
        int tokens = inputs.Sum(t => models.BiEncoder.Tokenizer.Encode(t, 512).Length);

        Reply floats = await _server.Client.PostAsync("/v1/embeddings", new { input = inputs, model = "text-embedding-3-small" });
        Assert.Equal(HttpStatusCode.OK, floats.Status);
        JsonElement list = floats.Json;
        Assert.Equal("list", list.GetProperty("object").GetString());
        Assert.Equal("test/bi-small", list.GetProperty("model").GetString());
        Assert.Equal(tokens, list.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(tokens, list.GetProperty("usage").GetProperty("total_tokens").GetInt32());
        JsonElement[] data = [.. list.GetProperty("data").EnumerateArray()];
        for (int i = 0; i < inputs.Length; i++)
        {
            Assert.Equal("embedding", data[i].GetProperty("object").GetString());
            Assert.Equal(i, data[i].GetProperty("index").GetInt32());
            AssertClose(expected[i], Http.Floats(data[i].GetProperty("embedding")));
        }

        Reply base64 = await _server.Client.PostAsync("/v1/embeddings", new { input = inputs[1], encoding_format = "base64", dimensions = models.BiEncoder.Dimension });
        Assert.Equal(HttpStatusCode.OK, base64.Status);
        string encoded = Assert.Single(base64.Json.GetProperty("data").EnumerateArray()).GetProperty("embedding").GetString()!;
        float[] decoded = MemoryMarshal.Cast<byte, float>(Convert.FromBase64String(encoded)).ToArray();
        Assert.Equal(expected[1], decoded); // bit-exact: base64 carries the float32 bytes themselves
    }

    [Fact]
    public async Task TeiRerankSortsBySigmoidScoresOrRawLogits()
    {
        string[] docs = Texts[..4];
        float[] logits = models.CrossEncoder.Score(Query, docs);
        int[] order = [.. Enumerable.Range(0, docs.Length).OrderByDescending(i => logits[i])];

        Reply reply = await _server.Client.PostAsync("/rerank", new { query = Query, texts = docs });
        Assert.Equal(HttpStatusCode.OK, reply.Status);
        JsonElement[] ranks = [.. reply.Json.EnumerateArray()];
        Assert.Equal(order, ranks.Select(r => r.GetProperty("index").GetInt32()));
        foreach (JsonElement rank in ranks)
        {
            float logit = logits[rank.GetProperty("index").GetInt32()];
            Assert.Equal(1 / (1 + Math.Exp(-logit)), rank.GetProperty("score").GetDouble(), 1e-6);
            Assert.False(rank.TryGetProperty("text", out _));
        }

        Reply raw = await _server.Client.PostAsync("/rerank", new { query = Query, texts = docs, raw_scores = true, return_text = true });
        Assert.Equal(HttpStatusCode.OK, raw.Status);
        foreach (JsonElement rank in raw.Json.EnumerateArray())
        {
            int index = rank.GetProperty("index").GetInt32();
            Assert.Equal(logits[index], rank.GetProperty("score").GetSingle(), 1e-5f);
            Assert.Equal(docs[index], rank.GetProperty("text").GetString());
        }
        Assert.True(logits.Max() - logits.Min() > 1e-3, "the random cross-encoder must tell these documents apart");
    }

    [Fact]
    public async Task CohereRerankReturnsTopNWithDocuments()
    {
        string[] docs = Texts[..4];
        float[] logits = models.CrossEncoder.Score(Query, docs);
        int[] order = [.. Enumerable.Range(0, docs.Length).OrderByDescending(i => logits[i])];

        object[] documents = [docs[0], new { text = docs[1] }, docs[2], new { text = docs[3], title = "ignored" }];
        Reply reply = await _server.Client.PostAsync("/v1/rerank",
            new { model = "rerank-english-v3.0", query = Query, documents, top_n = 2, return_documents = true });
        Assert.Equal(HttpStatusCode.OK, reply.Status);
        JsonElement body = reply.Json;
        Assert.Equal("test/cross-small", body.GetProperty("model").GetString());
        JsonElement[] results = [.. body.GetProperty("results").EnumerateArray()];
        Assert.Equal(order[..2], results.Select(r => r.GetProperty("index").GetInt32()));
        foreach (JsonElement result in results)
        {
            int index = result.GetProperty("index").GetInt32();
            Assert.Equal(1 / (1 + Math.Exp(-logits[index])), result.GetProperty("relevance_score").GetDouble(), 1e-6);
            Assert.Equal(docs[index], result.GetProperty("document").GetProperty("text").GetString());
        }
        int tokens = docs.Sum(d => models.CrossEncoder.Tokenizer.EncodePair(Query, d, 512).Length);
        Assert.Equal(tokens, body.GetProperty("usage").GetProperty("total_tokens").GetInt32());
    }

    [Fact]
    public async Task HealthInfoAndMetricsDescribeTheServer()
    {
        Reply health = await _server.Client.GetReplyAsync("/health");
        Assert.Equal(HttpStatusCode.OK, health.Status);

        Reply info = await _server.Client.GetReplyAsync("/info");
        Assert.Equal(HttpStatusCode.OK, info.Status);
        JsonElement body = info.Json;
        Assert.Equal("test/bi-small", body.GetProperty("model_id").GetString());
        Assert.Equal(models.BiEncoder.MaxSequenceLength, body.GetProperty("max_input_length").GetInt32());
        Assert.Equal(1024, body.GetProperty("max_client_batch_size").GetInt32());
        Assert.Equal("mean", body.GetProperty("model_type").GetProperty("embedding").GetProperty("pooling").GetString());
        JsonElement embedding = body.GetProperty("models").GetProperty("embedding");
        Assert.Equal(models.BiEncoder.Dimension, embedding.GetProperty("dimension").GetInt32());
        Assert.Equal(models.BiEncoder.Fingerprint.WeightsSha256, embedding.GetProperty("weights_sha256").GetString());
        Assert.Equal("test/cross-small", body.GetProperty("models").GetProperty("reranker").GetProperty("model_id").GetString());
        Assert.False(string.IsNullOrEmpty(body.GetProperty("version").GetString()));

        await _server.Client.PostAsync("/embed", new { inputs = new[] { "a", "b", "c" } });
        Reply metrics = await _server.Client.GetReplyAsync("/metrics");
        Assert.Equal(HttpStatusCode.OK, metrics.Status);
        Assert.Equal("text/plain", metrics.ContentType);
        Assert.Contains("# TYPE funnel_batch_size histogram", metrics.Text);
        Assert.Equal(3, Http.Metric(metrics.Text, "funnel_inputs_total{model=\"test/bi-small\"}"));
        Assert.Equal(1, Http.Metric(metrics.Text, "funnel_http_requests_total{route=\"/embed\",method=\"POST\",status=\"200\"}"));
        Assert.Equal(0, Http.Metric(metrics.Text, "funnel_batch_queue_depth{model=\"test/cross-small\"}"));
    }
}
