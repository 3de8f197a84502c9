using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Funnel.Server;

namespace Funnel.Tests.Server;

/// <summary>Bad requests get RFC 7807 problems naming the field at fault, never a stack trace.</summary>
[Collection(ServerCollection.Name)]
public sealed class BadInputTests(SmallModels models) : IAsyncLifetime
{
    private static readonly ServerOptions Limits = new() { MaxRequestBodyBytes = 64 * 1024, MaxInputsPerRequest = 8 };

    private RunningServer _server = null!;

    public async Task InitializeAsync() => _server = await RunningServer.StartAsync(models.Both, Limits);

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Theory]
    [InlineData("/embed", "{\"inputs\": [\"a\",", "line 1")]
    [InlineData("/embed", "", "empty")]
    [InlineData("/rerank", "{'query': 'x'}", "not valid JSON")]
    [InlineData("/v1/embeddings", "{\"input\": \"a\"} trailing", "not valid JSON")]
    public async Task MalformedJsonIsA400(string path, string body, string mentions)
    {
        Reply reply = await _server.Client.PostRawAsync(path, body);
        Http.AssertProblem(reply, HttpStatusCode.BadRequest, mentions: mentions);
    }

    [Theory]
    [InlineData("/embed", "[\"a\"]", "$", "JSON object")]
    [InlineData("/embed", "{}", "inputs", "required")]
    [InlineData("/embed", "{\"inputs\": 42}", "inputs", "a string or an array of strings")]
    [InlineData("/embed", "{\"inputs\": []}", "inputs", "must not be empty")]
    [InlineData("/embed", "{\"inputs\": [\"a\", 7]}", "inputs[1]", "must be a string")]
    [InlineData("/embed", "{\"inputs\": [\"a\", \"\\ud800\"]}", "inputs[1]", "lone surrogate")]
    [InlineData("/embed", "{\"inputs\": \"a\", \"truncate\": \"yes\"}", "truncate", "true or false")]
    [InlineData("/embed", "{\"inputs\": \"a\", \"truncation_direction\": \"left\"}", "truncation_direction", "right")]
    [InlineData("/rerank", "{\"texts\": [\"a\"]}", "query", "required")]
    [InlineData("/rerank", "{\"query\": \"q\", \"texts\": \"a\"}", "texts", "array of strings")]
    [InlineData("/rerank", "{\"query\": \"q\", \"texts\": []}", "texts", "must not be empty")]
    [InlineData("/rerank", "{\"query\": \"\", \"texts\": [\"a\"]}", "query", "must not be empty")]
    [InlineData("/v1/embeddings", "{\"input\": [[101, 102]]}", "input", "token ids")]
    [InlineData("/v1/embeddings", "{\"input\": \"a\", \"encoding_format\": \"int8\"}", "encoding_format", "\"float\", \"base64\"")]
    [InlineData("/v1/embeddings", "{\"input\": \"a\", \"dimensions\": 16}", "dimensions", "cannot shorten")]
    [InlineData("/v1/embeddings", "{\"input\": \"a\", \"dimensions\": 1.5}", "dimensions", "an integer")]
    [InlineData("/v1/rerank", "{\"query\": \"q\", \"documents\": [{\"title\": \"t\"}]}", "documents[0].text", "required")]
    [InlineData("/v1/rerank", "{\"query\": \"q\", \"documents\": [true]}", "documents[0]", "object with a \"text\" field")]
    [InlineData("/v1/rerank", "{\"query\": \"q\", \"documents\": [\"a\"], \"top_n\": 0}", "top_n", "between 1 and")]
    public async Task InvalidFieldsAreA400NamingTheField(string path, string body, string field, string mentions)
    {
        Reply reply = await _server.Client.PostRawAsync(path, body);
        Http.AssertProblem(reply, HttpStatusCode.BadRequest, field, mentions);
    }

    [Fact]
    public async Task TooManyInputsIsA413()
    {
        Reply reply = await _server.Client.PostAsync("/embed", new { inputs = Enumerable.Repeat("x", 9).ToArray() });
        Http.AssertProblem(reply, HttpStatusCode.RequestEntityTooLarge, "inputs", "limit of 8");
    }

    [Fact]
    public async Task AnOversizeBodyIsA413()
    {
        string huge = new('a', 100 * 1024);
        Reply reply = await _server.Client.PostAsync("/embed", new { inputs = huge });
        Http.AssertProblem(reply, HttpStatusCode.RequestEntityTooLarge, mentions: "larger than the server's limit");
    }

    [Fact]
    public async Task AnOverlongInputIsA413UnlessTruncated()
    {
        string longText = string.Join(' ', Enumerable.Repeat("token", models.BiEncoder.MaxSequenceLength + 10));
        Reply refused = await _server.Client.PostAsync("/embed", new { inputs = new[] { "short", longText } });
        Http.AssertProblem(refused, HttpStatusCode.RequestEntityTooLarge, "inputs[1]", "truncate");

        Reply truncated = await _server.Client.PostAsync("/embed", new { inputs = new[] { "short", longText }, truncate = true });
        Assert.Equal(HttpStatusCode.OK, truncated.Status);
        float[] expected = models.BiEncoder.Encode(longText);
        float[] actual = Http.Floats(truncated.Json[1]);
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], actual[i], 1e-6f);

        string longDocument = string.Join(' ', Enumerable.Repeat("token", models.CrossEncoder.MaxSequenceLength));
        Reply pair = await _server.Client.PostAsync("/rerank", new { query = "q", texts = new[] { "short", longDocument } });
        Http.AssertProblem(pair, HttpStatusCode.RequestEntityTooLarge, "texts[1]");
    }

    [Fact]
    public async Task UnknownRoutesAndWrongMethodsAreProblems()
    {
        Http.AssertProblem(await _server.Client.GetReplyAsync("/nope"), HttpStatusCode.NotFound, mentions: "/nope");
        Http.AssertProblem(await _server.Client.GetReplyAsync("/embed"), HttpStatusCode.MethodNotAllowed, mentions: "GET");
    }

    [Fact]
    public async Task AFailingModelIsA500WithATraceIdAndNoStackTrace()
    {
        var broken = Funnel.Inference.SentenceEncoder.Load(models.BiEncoderFolder);
        broken.Dispose(); // every call now throws ObjectDisposedException inside the batch
        await using RunningServer server = await RunningServer.StartAsync(new ServerModels(broken, "broken"));
        Reply reply = await server.Client.PostAsync("/embed", new { inputs = "a" });
        JsonElement problem = Http.AssertProblem(reply, HttpStatusCode.InternalServerError, mentions: "trace id");
        Assert.Equal("Backend", problem.GetProperty("error_type").GetString());
        Assert.DoesNotContain("ObjectDisposed", reply.Text);
    }

    [Fact]
    public async Task AMissingModelIsExplained()
    {
        await using RunningServer rerankOnly = await RunningServer.StartAsync(new ServerModels(CrossEncoder: models.CrossEncoder, CrossEncoderId: "x"));
        Reply reply = await rerankOnly.Client.PostAsync("/embed", new { inputs = "a" });
        Http.AssertProblem(reply, HttpStatusCode.NotFound, mentions: "--bi-encoder");
    }

    [Fact]
    public async Task AnApiKeyGuardsEverythingButHealth()
    {
        await using RunningServer secured = await RunningServer.StartAsync(models.Both, new ServerOptions { ApiKey = "s3cret" });
        using var anonymous = new HttpClient { BaseAddress = secured.Address };

        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetReplyAsync("/health")).Status);
        Reply missing = await anonymous.PostAsync("/embed", new { inputs = "a" });
        Http.AssertProblem(missing, HttpStatusCode.Unauthorized, mentions: "Bearer");
        Assert.Equal("Bearer", missing.Message.Headers.WwwAuthenticate.Single().Scheme);
        Http.AssertProblem(await anonymous.GetReplyAsync("/metrics"), HttpStatusCode.Unauthorized);

        anonymous.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "wrong");
        Http.AssertProblem(await anonymous.PostAsync("/embed", new { inputs = "a" }), HttpStatusCode.Unauthorized, mentions: "not valid");

        Assert.Equal(HttpStatusCode.OK, (await secured.Client.PostAsync("/embed", new { inputs = "a" })).Status);
    }
}
