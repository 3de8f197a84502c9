using System.CommandLine;
using System.Text.Json;
using Funnel.Cli;
using Funnel.Index;
using Funnel.Retrieval;
using Funnel.Tests.Retrieval;

namespace Funnel.Tests.Cli;

/// <summary>funnel index / search / reindex / delete, in-process with captured output, on small random-weight models.</summary>
public sealed class CollectionCommandTests(SmallModels models) : IClassFixture<SmallModels>, IDisposable
{
    private readonly string _temp = Directory.CreateTempSubdirectory("funnel-cli-collection-").FullName;

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    private string CollectionDir => Path.Combine(_temp, "c");

    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = Program.Run(args, new InvocationConfiguration { Output = output, Error = error });
        return (code, output.ToString(), error.ToString());
    }

    private string WriteCorpus(int count, string name = "corpus.jsonl")
    {
        string path = Path.Combine(_temp, name);
        File.WriteAllLines(path, models.Documents.Take(count).Select((d, i) =>
            JsonSerializer.Serialize(new { id = d.Id, title = d.Title, text = d.Text, metadata = new { part = i % 2 == 0 ? "even" : "odd" } })));
        return path;
    }

    private void Index(int count = 20)
    {
        var (code, stdout, stderr) = Run("index", "--collection", CollectionDir, "--input", WriteCorpus(count), "--bi-encoder", models.BiEncoderPath, "--batch-size", "8");
        Assert.True(code == 0, stderr);
        Assert.Contains($"{count} written", stdout);
    }

    [Fact]
    public void IndexThenSearchPrintsResultsAsJsonAndAsATable()
    {
        Index();
        Document d = models.Documents[4];
        // Its title makes it BM25's first hit, so it is among the top 5 of the fusion, which are all reranked and returned.
        var (code, stdout, stderr) = Run("search", "-c", CollectionDir, "--rerank", models.CrossEncoderPath, "--top", "5", "--k", "5", "--json", d.Title);
        Assert.True(code == 0, stderr);
        using JsonDocument json = JsonDocument.Parse(stdout);
        JsonElement results = json.RootElement.GetProperty("results");
        Assert.Equal(5, results.GetArrayLength());
        Assert.Contains(results.EnumerateArray(), r => r.GetProperty("id").GetString() == d.Id && r.GetProperty("bm25Rank").GetInt32() == 1);
        double[] rerank = results.EnumerateArray().Select(r => r.GetProperty("rerankScore").GetDouble()).ToArray();
        Assert.Equal(rerank.OrderDescending(), rerank);
        Assert.True(json.RootElement.GetProperty("timingsMs").GetProperty("rerank").GetDouble() > 0);

        var table = Run("search", "-c", CollectionDir, "-r", "bm25", "--filter", "part=even", d.Title);
        Assert.Equal(0, table.Code);
        Assert.Contains(models.Documents[4].Id, table.Out); // document 4 is "even"
        Assert.DoesNotContain(models.Documents[5].Id, table.Out);
        Assert.Contains("rerank", table.Out);
        Assert.Contains("total", table.Out);
    }

    [Fact]
    public void DeleteRemovesDocumentsAndReindexSwitchesTheBiEncoder()
    {
        Index();
        var deleted = Run("delete", "-c", CollectionDir, models.Documents[0].Id, "no-such-id");
        Assert.Equal(1, deleted.Code); // one id was unknown
        Assert.Contains("deleted 1 of 2", deleted.Out);

        var mismatch = Run("search", "-c", CollectionDir, "--bi-encoder", models.OtherBiEncoderPath, "anything");
        Assert.Equal(2, mismatch.Code);
        Assert.Contains("funnel reindex", mismatch.Err);

        var reindex = Run("reindex", "-c", CollectionDir, "--bi-encoder", models.OtherBiEncoderPath);
        Assert.True(reindex.Code == 0, reindex.Err);
        Assert.Contains("19 documents", reindex.Out);
        var after = Run("search", "-c", CollectionDir, "-r", "dense", "--json", "--bi-encoder", models.OtherBiEncoderPath, "protein");
        Assert.True(after.Code == 0, after.Err);
        using (Collection c = Collection.Open(CollectionDir, readOnly: true))
            Assert.Equal(models.OtherBiEncoder.Fingerprint.WeightsSha256, c.BiEncoder.WeightsSha256);
    }

    [Fact]
    public void RunningTheSameIngestAgainSkipsEverything()
    {
        Index(12);
        var (code, stdout, _) = Run("index", "-c", CollectionDir, "-i", WriteCorpus(12));
        Assert.Equal(0, code);
        Assert.Contains("0 written, 12 unchanged", stdout);
    }

    [Fact]
    public void NewCollectionsTakeTheGraphParametersAndQuantization()
    {
        var (code, _, stderr) = Run("index", "-c", CollectionDir, "-i", WriteCorpus(12), "--bi-encoder", models.BiEncoderPath,
            "--hnsw-m", "24", "--ef-construction", "80", "--ef-search", "40", "--quantization", "int8");
        Assert.True(code == 0, stderr);
        HnswOptions hnsw = CollectionManifest.Read(CollectionDir).VectorIndex.Hnsw;
        Assert.Equal((24, 80, 40, VectorQuantization.Int8), (hnsw.M, hnsw.EfConstruction, hnsw.EfSearch, hnsw.Quantization));
        // On 12 documents the graph search finds every chunk and rescores with the floats: the same top 5 as exact search.
        string exact = Path.Combine(_temp, "exact");
        Assert.Equal(0, Run("index", "-c", exact, "-i", WriteCorpus(12), "--bi-encoder", models.BiEncoderPath, "--index", "flat").Code);
        string[] Top(string collection)
        {
            var search = Run("search", "-c", collection, "-r", "dense", "--k", "5", "--top", "5", "--json", models.Documents[3].Title);
            Assert.True(search.Code == 0, search.Err);
            return [.. JsonDocument.Parse(search.Out).RootElement.GetProperty("results").EnumerateArray().Select(r => r.GetProperty("id").GetString()!)];
        }
        Assert.Equal(5, Top(exact).Length);
        Assert.Equal(Top(exact), Top(CollectionDir));
    }

    [Fact]
    public void BadInputGetsOneClearLineAndExitCode2()
    {
        string bad = Path.Combine(_temp, "bad.jsonl");
        File.WriteAllLines(bad, ["""{"id": "a", "text": "fine"}""", """{"id": "b", "text": 42}"""]);
        var malformed = Run("index", "-c", CollectionDir, "-i", bad, "--bi-encoder", models.BiEncoderPath);
        Assert.Equal(2, malformed.Code);
        Assert.Contains("bad.jsonl, line 2", malformed.Err);

        (string[] Args, string Expected)[] cases =
        [
            (["search", "-c", Path.Combine(_temp, "missing"), "q"], "does not exist"),
            (["search", "-c", _temp, "q"], "not a Funnel collection"),
            (["index", "-c", Path.Combine(_temp, "new"), "-i", Path.Combine(_temp, "none.jsonl"), "--bi-encoder", models.BiEncoderPath], "none.jsonl"),
            (["index", "-c", Path.Combine(_temp, "new"), "-i", WriteCorpus(2), "--bi-encoder", models.BiEncoderPath, "--hnsw-m", "1"], "--hnsw-m must be between 2 and 256 (got 1)"),
        ];
        foreach (var (args, expected) in cases)
        {
            var (code, _, stderr) = Run(args);
            Assert.True(code == 2, $"{string.Join(' ', args)} → {code}: {stderr}");
            Assert.Contains(expected, stderr);
            Assert.DoesNotContain("   at ", stderr);
        }

        Index(4);
        foreach (var (args, expected) in new (string[], string)[]
                 {
                     (["search", "-c", CollectionDir, "--filter", "novalue", "q"], "key=value"),
                     (["search", "-c", CollectionDir, "--k", "0", "q"], "at least 1"),
                     (["search", "-c", CollectionDir, "--ef", "0", "q"], "--ef must be at least 1"),
                     (["search", "-c", CollectionDir, "  "], "query is empty"),
                     (["search", "-c", CollectionDir, "--rerank-weight", "0.3", "q"], "give the cross-encoder with --rerank"),
                     (["search", "-c", CollectionDir, "--rerank-weight", "-1", "q"], "--rerank-weight must be between 0 and 1 (got -1)"),
                 })
        {
            var (code, _, stderr) = Run(args);
            Assert.True(code == 2, $"{string.Join(' ', args)} → {code}: {stderr}");
            Assert.Contains(expected, stderr);
        }
    }
}
