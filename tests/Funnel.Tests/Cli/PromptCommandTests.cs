using System.Text.Json;
using Funnel.Tests.Inference;
using static Funnel.Tests.Cli.CliRun;
using static Funnel.Tests.Inference.Similarity;

namespace Funnel.Tests.Cli;

/// <summary>The CLI paths that embed queries or documents apply the prompt of the role (model with "query" and "passage" prompts).</summary>
public sealed class PromptCommandTests(PromptModels models) : IClassFixture<PromptModels>, IDisposable
{
    private const string Query = "How many people live in Berlin?";
    private const string Passage = "Berlin had a population of 3,520,031 registered inhabitants.";

    private readonly string _temp = Directory.CreateTempSubdirectory("funnel-prompt-cli-").FullName;

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    private static float[] Line(string stdout, int index) =>
        JsonSerializer.Deserialize<float[]>(stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)[index])!;

    [Theory]
    [InlineData("--input-type", "query")]
    [InlineData("--input-type", "document")]
    [InlineData("--prompt", "passage")]
    [InlineData(null, null)]
    public void Embed_applies_the_prompt_of_the_role_or_the_one_named(string? option, string? value)
    {
        string[] args = option is null ? ["embed", "-m", models.PromptedFolder, Query, Passage] : ["embed", "-m", models.PromptedFolder, option, value!, Query, Passage];
        var (code, stdout, stderr) = Run(args);

        Assert.True(code == 0, stderr);
        Func<string, float[]> expected = value switch
        {
            "query" => models.ExpectedQuery,
            "document" or "passage" => models.ExpectedDocument,
            _ => text => models.Plain.Encode(text),
        };
        AssertClose(expected(Query), Line(stdout, 0), 1e-6f);
        AssertClose(expected(Passage), Line(stdout, 1), 1e-6f);
        Assert.Contains($"bi-encoder: folder {models.PromptedFolder}", stderr);
    }

    [Theory]
    [InlineData("give --prompt or --input-type, not both", "--prompt", "query", "--input-type", "query")]
    [InlineData("this model has no prompt \"document\" (it has: query, passage)", "--prompt", "document")]
    public void Embed_refuses_a_prompt_it_cannot_apply(string mentions, params string[] options)
    {
        var (code, _, stderr) = Run(["embed", "-m", models.PromptedFolder, .. options, Query]);

        Assert.Equal(2, code);
        Assert.Contains(mentions, stderr);
        Assert.DoesNotContain("   at ", stderr);
    }

    [Fact]
    public void Index_then_search_scores_the_query_prompt_against_the_document_prompt()
    {
        string corpus = Path.Combine(_temp, "corpus.jsonl");
        File.WriteAllLines(corpus, [JsonSerializer.Serialize(new { id = "berlin", text = Passage })]);
        string collection = Path.Combine(_temp, "c");
        var indexed = Run("index", "-c", collection, "-i", corpus, "--bi-encoder", models.PromptedFolder, "--index", "flat");
        Assert.True(indexed.Code == 0, indexed.Err);

        var (code, stdout, stderr) = Run("search", "-c", collection, "--retriever", "dense", "--json", Query);

        Assert.True(code == 0, stderr);
        JsonElement hit = Assert.Single(JsonDocument.Parse(stdout).RootElement.GetProperty("results").EnumerateArray());
        Assert.Equal(Dot(models.ExpectedQuery(Query), models.ExpectedDocument(Passage)), hit.GetProperty("denseScore").GetSingle(), 1e-5f);
        Assert.Contains($"bi-encoder: folder {models.PromptedFolder}", stderr); // reloaded from the manifest
    }

    [Fact]
    public void Eval_dense_runs_queries_as_queries_over_documents_as_documents()
    {
        string beir = Path.Combine(_temp, "beir");
        Directory.CreateDirectory(Path.Combine(beir, "qrels"));
        File.WriteAllLines(Path.Combine(beir, "corpus.jsonl"), [JsonSerializer.Serialize(new Dictionary<string, string> { ["_id"] = "d1", ["text"] = Passage })]);
        File.WriteAllLines(Path.Combine(beir, "queries.jsonl"), [JsonSerializer.Serialize(new Dictionary<string, string> { ["_id"] = "q1", ["text"] = Query })]);
        File.WriteAllLines(Path.Combine(beir, "qrels", "test.tsv"), ["query-id\tcorpus-id\tscore", "q1\td1\t1"]);
        string runFile = Path.Combine(_temp, "dense.trec");

        var (code, _, stderr) = Run("eval", "-d", beir, "--retriever", "dense", "--bi-encoder", models.PromptedFolder,
            "--collection", Path.Combine(_temp, "eval-collection"), "--run-file", runFile);

        Assert.True(code == 0, stderr);
        var (docId, score) = Assert.Single(Funnel.Evaluation.Run.ReadTrec(runFile).Ranking("q1"));
        Assert.Equal("d1", docId);
        Assert.Equal(Dot(models.ExpectedQuery(Query), models.ExpectedDocument(Passage)), score, 1e-5);
    }

    [Fact]
    public void Rerank_without_a_model_says_none_is_packaged()
    {
        var (code, _, stderr) = Run("rerank", "-q", Query, Passage);

        Assert.Equal(2, code);
        Assert.Contains("no cross-encoder is packaged with Funnel", stderr);
        Assert.Contains("--model", stderr);
    }
}
