using System.Net;
using System.Text.Json;
using Funnel.Server;
using Funnel.Tests.Inference;
using static Funnel.Tests.Inference.Similarity;

namespace Funnel.Tests.Server;

/// <summary>Each server route that embeds applies the prompt of its role: checked against the prompt typed in by hand.</summary>
public sealed class PromptEndpointTests(PromptModels models) : IClassFixture<PromptModels>, IAsyncLifetime
{
    private static readonly string[] Texts = ["How many people live in Berlin?", "Berlin is well known for its museums."];

    private readonly string _collections = Directory.CreateTempSubdirectory("funnel-prompt-server-").FullName;
    private RunningServer _server = null!;

    public async Task InitializeAsync() =>
        _server = await RunningServer.StartAsync(new ServerModels(models.Prompted, "test/prompted"), new ServerOptions { CollectionsDirectory = _collections });

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        Directory.Delete(_collections, recursive: true);
    }

    private static float[][] Rows(JsonElement array) => [.. array.EnumerateArray().Select(Http.Floats)];

    [Fact]
    public async Task Tei_embed_applies_the_named_prompt_and_none_without_one()
    {
        Reply query = await _server.Client.PostAsync("/embed", new { inputs = Texts, prompt_name = "query" });
        Reply passage = await _server.Client.PostAsync("/embed", new { inputs = Texts, prompt_name = "passage" });
        Reply none = await _server.Client.PostAsync("/embed", new { inputs = Texts });

        for (int i = 0; i < Texts.Length; i++)
        {
            AssertClose(models.ExpectedQuery(Texts[i]), Rows(query.Json)[i], 1e-6f);
            AssertClose(models.ExpectedDocument(Texts[i]), Rows(passage.Json)[i], 1e-6f);
            AssertClose(models.Plain.Encode(Texts[i]), Rows(none.Json)[i], 1e-6f);
        }
        Http.AssertProblem(await _server.Client.PostAsync("/embed", new { inputs = Texts, prompt_name = "document" }), HttpStatusCode.BadRequest,
            "prompt_name", "'prompt_name' is \"document\", which is not one of test/prompted's prompts (\"query\", \"passage\")");
    }

    [Fact]
    public async Task OpenAi_embeddings_take_the_role_from_input_type()
    {
        Reply query = await _server.Client.PostAsync("/v1/embeddings", new { input = Texts, input_type = "query" });
        Reply document = await _server.Client.PostAsync("/v1/embeddings", new { input = Texts, input_type = "document" });
        Reply none = await _server.Client.PostAsync("/v1/embeddings", new { input = Texts });

        float[] Row(Reply reply, int i) => Http.Floats(reply.Json.GetProperty("data")[i].GetProperty("embedding"));
        for (int i = 0; i < Texts.Length; i++)
        {
            AssertClose(models.ExpectedQuery(Texts[i]), Row(query, i), 1e-6f);
            AssertClose(models.ExpectedDocument(Texts[i]), Row(document, i), 1e-6f);
            AssertClose(models.Plain.Encode(Texts[i]), Row(none, i), 1e-6f);
        }
        // The prompt's tokens are input tokens too.
        int promptTokens = models.Prompted.Tokenizer.Encode(PromptModels.QueryPrompt).Length - 2;
        Assert.Equal(none.Json.GetProperty("usage").GetProperty("prompt_tokens").GetInt32() + Texts.Length * promptTokens,
            query.Json.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Http.AssertProblem(await _server.Client.PostAsync("/v1/embeddings", new { input = Texts, input_type = "passage" }), HttpStatusCode.BadRequest, "input_type");
    }

    [Fact]
    public async Task Collection_search_embeds_the_query_as_a_query_against_documents_embedded_as_documents()
    {
        Assert.Equal(HttpStatusCode.Created, (await _server.Client.PostAsync("/collections", new { name = "c", index = "flat" })).Status);
        Reply written = await _server.Client.PostAsync("/collections/c/documents", new { documents = new[] { new { id = "museums", text = Texts[1] } } });
        Assert.Equal(HttpStatusCode.OK, written.Status);

        Reply search = await _server.Client.PostAsync("/collections/c/search", new { query = Texts[0], retriever = "dense" });

        Assert.Equal(HttpStatusCode.OK, search.Status);
        JsonElement hit = Assert.Single(search.Json.GetProperty("results").EnumerateArray());
        Assert.Equal(Dot(models.ExpectedQuery(Texts[0]), models.ExpectedDocument(Texts[1])), hit.GetProperty("dense_score").GetSingle(), 1e-5f);
        JsonElement biEncoder = (await _server.Client.GetReplyAsync("/collections/c")).Json.GetProperty("bi_encoder");
        Assert.Equal(PromptModels.QueryPrompt, biEncoder.GetProperty("query_prompt").GetString());
        Assert.Equal(PromptModels.PassagePrompt, biEncoder.GetProperty("document_prompt").GetString());
        Assert.Equal("folder", biEncoder.GetProperty("source").GetProperty("kind").GetString());
    }

    [Fact]
    public async Task Info_names_the_source_and_the_prompt_of_each_role()
    {
        JsonElement embedding = (await _server.Client.GetReplyAsync("/info")).Json.GetProperty("models").GetProperty("embedding");

        Assert.Equal("folder", embedding.GetProperty("source").GetProperty("kind").GetString());
        Assert.Equal(models.PromptedFolder, embedding.GetProperty("source").GetProperty("id").GetString());
        Assert.Equal("query", embedding.GetProperty("query_prompt_name").GetString());
        Assert.Equal("passage", embedding.GetProperty("document_prompt_name").GetString());
        Assert.False(embedding.TryGetProperty("default_prompt_name", out _));
        Assert.Equal(PromptModels.QueryPrompt, embedding.GetProperty("prompts").GetProperty("query").GetString());
    }
}
