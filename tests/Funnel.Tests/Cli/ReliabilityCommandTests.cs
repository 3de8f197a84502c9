using System.Text.Json;
using Funnel.Retrieval;
using Funnel.Tests.Retrieval;

namespace Funnel.Tests.Cli;

/// <summary>
/// Issue 11, reliability defects of the CLI: NaN output (1), recovery (2), misspelled options (5), wrong kinds of path (7),
/// unbounded options (8), and the smaller ones of 9 (empty collections left behind, one validation rule, parse errors,
/// a cross-encoder taken for a bi-encoder, usage lines).
/// </summary>
public sealed class ReliabilityCommandTests(SmallModels models) : IClassFixture<SmallModels>, IDisposable
{
    private readonly string _temp = Directory.CreateTempSubdirectory("funnel-cli-reliability-").FullName;

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    private static string Readme => Path.Combine(TestPaths.RepoRoot, "README.md");

    private static void AssertUsageError((int Code, string Out, string Err) run, string mentions)
    {
        Assert.True(run.Code == 2, $"exit {run.Code}: {run.Err}");
        Assert.Contains(mentions, run.Err);
        Assert.StartsWith("error: ", run.Err.Split('\n').First(l => l.StartsWith("error: ", StringComparison.Ordinal)));
        Assert.DoesNotContain("   at ", run.Err);
        Assert.DoesNotContain("System.", run.Err);
    }

    private string Corpus(params string[] lines)
    {
        string path = Path.Combine(_temp, $"corpus-{Guid.NewGuid():N}.jsonl");
        File.WriteAllLines(path, lines);
        return path;
    }

    [Fact]
    public void Defect1_EmbedAndRerankRefuseNonFiniteModelOutputInsteadOfPrintingNull()
    {
        string bi = Server.ReliabilityTests.OverflowingModel(Path.Combine(_temp, "bad-bi"), crossEncoder: false);
        string cross = Server.ReliabilityTests.OverflowingModel(Path.Combine(_temp, "bad-cross"), crossEncoder: true);
        var embed = CliRun.Run("embed", "--model", bi, "hello");
        AssertUsageError(embed, "bi-encoder gave NaN");
        Assert.DoesNotContain("null", embed.Out);
        AssertUsageError(CliRun.Run("rerank", "--model", cross, "--query", "q", "a", "b"), "cross-encoder gave");
        // index: nothing is logged, and the collection it would have created is gone.
        string collection = Path.Combine(_temp, "nan-collection");
        AssertUsageError(CliRun.Run("index", "-c", collection, "-i", Corpus("""{"id":"a","text":"words"}"""), "--bi-encoder", bi), "NaN");
        Assert.False(Directory.Exists(collection));
    }

    [Fact]
    public void Defect2_RecoverKeepsTheIntactBatchesAndReportsTheLostOne()
    {
        string collection = Path.Combine(_temp, "c");
        string corpus = Corpus(models.Documents.Take(6).Select(d => JsonSerializer.Serialize(new { id = d.Id, text = d.Text })).ToArray());
        Assert.Equal(0, CliRun.Run("index", "-c", collection, "-i", corpus, "--bi-encoder", models.BiEncoderPath, "--batch-size", "2").Code);
        // index checkpoints at its end: log three more batches by hand, then damage the middle one.
        using (Collection c = Collection.Open(collection))
        {
            var embedder = new DocumentEmbedder(models.BiEncoder, c.Manifest.Chunking);
            foreach (Document d in models.Documents.Skip(10).Take(3))
                c.Upsert(embedder.Embed([d]));
        }
        string log = Directory.GetFiles(collection, "wal-*.log").Single();
        var lengths = new List<int>();
        Funnel.Retrieval.Storage.WriteAheadLog.Scan(log, long.Parse(Path.GetFileNameWithoutExtension(log)[4..]), (_, p) => lengths.Add(p.Length));
        long second = 24 + 12 + lengths[0] + 4;
        byte[] bytes = File.ReadAllBytes(log);
        bytes[second + 30] ^= 0xFF;
        File.WriteAllBytes(log, bytes);

        var refused = CliRun.Run("search", "-c", collection, "-r", "bm25", "cancer");
        AssertUsageError(refused, $"is corrupt at byte {second}");
        Assert.Contains("funnel collection recover", refused.Err);

        var recovered = CliRun.Run("collection", "recover", "-c", collection);
        Assert.True(recovered.Code == 0, recovered.Err);
        Assert.Contains("kept 2 logged batches", recovered.Out);
        Assert.Contains($"damaged bytes at offset {second:N0}", recovered.Out);
        Assert.Contains("lost batches: ", recovered.Out);
        Assert.Contains("the damaged log was kept as", recovered.Out);
        using Collection after = Collection.Open(collection, readOnly: true);
        Assert.Equal(8, after.DocumentCount);
        Assert.Null(after.Get(models.Documents[11].Id));
    }

    [Theory]
    [InlineData("rerank", "--tpo", "did you mean --top?")]
    [InlineData("embed", "--max-lenght", "did you mean --max-length?")]
    public void Defect5_AMisspelledOptionIsExit2NotInputText(string command, string typo, string suggestion)
    {
        string model = command == "rerank" ? models.CrossEncoderPath : models.BiEncoderPath;
        string[] args = command == "rerank" ? ["rerank", "--model", model, "--query", "q", typo, "1", "a", "b"] : ["embed", "--model", model, typo, "10", "hi"];
        var run = CliRun.Run(args);
        AssertUsageError(run, $"unknown option '{typo}'");
        Assert.Contains(suggestion, run.Err);
        Assert.Contains("after `--`", run.Err);
        Assert.Equal("", run.Out);
    }

    [Fact]
    public void Defect5_TextBeginningWithADashGoesAfterDoubleDash()
    {
        var run = CliRun.Run("embed", "--model", models.BiEncoderPath, "--", "-leading dash", "--also");
        Assert.True(run.Code == 0, run.Err);
        Assert.Equal(2, run.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.Equal(Funnel.Cli.Commands.Json.Array(models.BiEncoder.Encode("-leading dash")), run.Out.Split('\n')[0]);
    }

    [Fact]
    public void Defect7_AWrongKindOfPathIsAClearExit2()
    {
        string like = TestPaths.SharedModel("all-MiniLM-L6-v2");
        AssertUsageError(CliRun.Run("model", "random", "--like", like, "--arch", "small", "--out", Readme), "is a file");
        AssertUsageError(CliRun.Run("index", "-c", Readme, "-i", Readme, "--bi-encoder", models.BiEncoderPath), "is a file");
        AssertUsageError(CliRun.Run("search", "-c", Readme, "-r", "bm25", "q"), "is a file");
        AssertUsageError(CliRun.Run("serve", "--collections", Readme, "--bi-encoder", models.BiEncoderPath), "is a file");
        AssertUsageError(CliRun.Run("eval", "--dataset", SmallModels.NfCorpusZip, "--retriever", "bm25", "--run-file", _temp), "is a folder");
    }

    [Fact]
    public void Defect8_ShardsAreBoundedByTheTensorCountAndHugeTopsClamp()
    {
        string output = Path.Combine(_temp, "sharded");
        var shards = CliRun.Run("model", "random", "--like", TestPaths.SharedModel("all-MiniLM-L6-v2"), "--arch", "small", "--out", output, "--shards", "100000");
        AssertUsageError(shards, "--shards must be at most the model's");
        Assert.False(Directory.Exists(output));
        // Every shard count up to the tensor count writes exactly that many non-empty shards.
        var most = CliRun.Run("model", "random", "--like", TestPaths.SharedModel("all-MiniLM-L6-v2"), "--arch", "small", "--out", output, "--shards", "30");
        Assert.True(most.Code == 0, most.Err);
        Assert.Equal(30, Directory.GetFiles(output, "model-*-of-00030.safetensors").Length);
        Assert.Equal(models.BiEncoder.Encode("same weights"), Funnel.Inference.SentenceEncoder.Load(output).Encode("same weights"));

        string collection = Path.Combine(_temp, "c");
        Assert.Equal(0, CliRun.Run("index", "-c", collection, "-i", Corpus("""{"id":"a","text":"vitamin d"}""", """{"id":"b","text":"other words"}"""), "--bi-encoder", models.BiEncoderPath).Code);
        foreach (string retriever in new[] { "dense", "bm25", "hybrid" })
        {
            var search = CliRun.Run("search", "-c", collection, "-r", retriever, "--top", "2147483647", "--k", "2147483647", "--json", "vitamin");
            Assert.True(search.Code == 0, $"{retriever}: {search.Err}");
            Assert.Equal(retriever == "bm25" ? 1 : 2, JsonDocument.Parse(search.Out).RootElement.GetProperty("results").GetArrayLength());
        }
    }

    [Fact]
    public void Defect9_AFailedIndexLeavesNoEmptyCollectionBehind()
    {
        string collection = Path.Combine(_temp, "never");
        AssertUsageError(CliRun.Run("index", "-c", collection, "-i", Corpus("""{"id":"a","text":"fine"}""", "not json"), "--bi-encoder", models.BiEncoderPath), "line 2");
        Assert.False(Directory.Exists(collection));
        AssertUsageError(CliRun.Run("index", "-c", collection, "-i", Corpus("""{"id":"a","text":"fine"}"""), "--bi-encoder", models.BiEncoderPath, "--batch-size", "0"), "--batch-size must be at least 1");
        Assert.False(Directory.Exists(collection));
        // A folder the user made stays, empty as it was.
        Directory.CreateDirectory(collection);
        AssertUsageError(CliRun.Run("index", "-c", collection, "-i", Corpus("broken"), "--bi-encoder", models.BiEncoderPath), "line 1");
        Assert.Empty(Directory.EnumerateFileSystemEntries(collection));
    }

    [Fact]
    public void Defect9_EmptyDocumentsNestedMetadataAndBlankQueriesAreTreatedAsOverHttp()
    {
        // Server.ReliabilityTests.Defect9_EmptyDocumentsAndNestedMetadataAreKeptAsByTheCli checks the same rule over HTTP.
        string collection = Path.Combine(_temp, "c");
        var indexed = CliRun.Run("index", "-c", collection, "-i", Corpus("""{"id":"a","title":"","text":"","metadata":{"n":3,"tags":["x", "y"]}}"""), "--bi-encoder", models.BiEncoderPath);
        Assert.True(indexed.Code == 0, indexed.Err);
        using (Collection c = Collection.Open(collection, readOnly: true))
        {
            Assert.Equal("3", c.Get("a")!.Metadata["n"]);
            Assert.Equal("""["x", "y"]""", c.Get("a")!.Metadata["tags"]);
        }
        AssertUsageError(CliRun.Run("search", "-c", collection, "-r", "bm25", "   "), "the query is empty");
    }

    [Fact]
    public void Defect9_ParseErrorsExit2WithoutTypeNamesAndValidationNamesOptions()
    {
        AssertUsageError(CliRun.Run("embed", "--model", models.BiEncoderPath, "--batch-size", "many", "hi"), "--batch-size: 'many' is not a whole number");
        AssertUsageError(CliRun.Run("embed", "--model", models.BiEncoderPath, "--threads", "0", "hi"), "--threads must be at least 1 (got 0)");
        AssertUsageError(CliRun.Run("rerank", "--model", models.CrossEncoderPath, "--batch-size", "0", "-q", "q", "a"), "--batch-size must be at least 1");
        AssertUsageError(CliRun.Run("index", "-c", Path.Combine(_temp, "x"), "-i", Readme, "--index", "tree"), "--index: 'tree' is not one of hnsw, flat");
    }

    [Fact]
    public void Defect9_ACrossEncoderFolderIsRefusedAsABiEncoder()
    {
        var run = CliRun.Run("embed", "--model", models.CrossEncoderPath, "hi");
        AssertUsageError(run, "is a cross-encoder");
        Assert.Contains("rerank", run.Err);
    }

    [Fact]
    public void Defect9_UsageLinesSayFunnel()
    {
        var help = CliRun.Run("search", "--help");
        Assert.Equal(0, help.Code);
        Assert.Contains("funnel search <query> [options]", help.Out);
        Assert.DoesNotContain("Funnel.Cli", help.Out);
    }
}
