using System.Text.Json;
using Funnel.Inference.Packaged;

namespace Funnel.Tests.Quality;

/// <summary>
/// Quality gates: the real packaged models, through <c>funnel</c> as a user runs it, on the shared STS benchmark and BEIR
/// NFCorpus, against the published MTEB scores of the models (STSBenchmark: Spearman of cosine similarities; NFCorpus:
/// nDCG@10 under BEIR's protocol) with the tolerances. Nothing here compares with a value Funnel produced.
/// </summary>
public sealed class PublishedQualityTests(NfCorpusCollections nf) : IClassFixture<NfCorpusCollections>
{
    private static double Metric(string json, string name) => JsonDocument.Parse(json).RootElement.GetProperty("metrics").GetProperty(name).GetDouble();

    private Task<string> EvalAsync(params string[] args) => nf.RunAsync(["eval", "--json", .. args]);

    [Fact]
    public async Task MiniLm_StsBenchmarkTestSpearman_IsThePublished82_03()
    {
        string json = await EvalAsync("-d", TestPaths.SharedDataset("stsbenchmark"));
        Assert.Equal(1379, JsonDocument.Parse(json).RootElement.GetProperty("pairs").GetInt32());
        // Published (MTEB STSBenchmark, test split): all-MiniLM-L6-v2 82.03.
        Assert.InRange(Metric(json, "Spearman"), 0.8203 - 0.001, 0.8203 + 0.001);
    }

    [Fact]
    public async Task MiniLm_NfCorpusDenseCollection_IsWithin0_01Of0_316()
    {
        // Published (MTEB NFCorpus, BEIR's exact protocol): 31.59. A collection chunks documents longer than the window instead of
        // truncating them and searches HNSW, hence the wider tolerance.
        Assert.InRange(await CollectionNdcgAsync(PackagedModels.AllMiniLmL6V2.Id, "dense"), 0.316 - 0.01, 0.316 + 0.01);
    }

    [Fact]
    public async Task MiniLm_NfCorpusHybridCollection_ReachesAtLeast0_35()
    {
        // Better than either part alone: dense 0.316, BM25 0.325 (BEIR, Elasticsearch).
        double ndcg = await CollectionNdcgAsync(PackagedModels.AllMiniLmL6V2.Id, "hybrid");
        Assert.True(ndcg >= 0.35, $"hybrid nDCG@10 {ndcg:F4} < 0.35");
    }

    [Fact]
    public async Task Arctic_NfCorpusDenseCollectionWithItsQueryPrompt_IsWithin0_01Of0_309()
    {
        // Published (Snowflake's model card, MTEB NFCorpus): 30.89, queries with the model's query prompt.
        Assert.InRange(await CollectionNdcgAsync(PackagedModels.SnowflakeArcticEmbedXs.Id, "dense"), 0.309 - 0.01, 0.309 + 0.01);
    }

    /// <summary>nDCG@10 of <c>funnel eval --retriever RETRIEVER</c> on the model's shared NFCorpus collection, which it must find complete.</summary>
    private async Task<double> CollectionNdcgAsync(string modelId, string retriever)
    {
        string collection = await nf.CollectionAsync(modelId);
        string json = await EvalAsync("-d", NfCorpusCollections.NfCorpus, "--retriever", retriever, "--collection", collection,
            "--run-file", Path.Combine(Path.GetDirectoryName(collection)!, $"{Path.GetFileName(collection)}.{retriever}.trec"));
        string detail = JsonDocument.Parse(json).RootElement.GetProperty("stages").EnumerateArray()
            .Single(s => s.GetProperty("stage").GetString() == "collection").GetProperty("detail").GetString()!;
        Assert.Contains("0 documents embedded, 3,633 already there", detail);
        return Metric(json, "nDCG@10");
    }

    /// <summary>
    /// BEIR's own protocol (--exact: one vector per document truncated to 256 tokens, exact search, the query's id never
    /// retrieved) gives the published figure itself, so the tolerance is float rounding, not the collection's differences.
    /// </summary>
    [Fact]
    public async Task MiniLm_NfCorpusExactBeirProtocol_ReproducesThePublished0_3159()
    {
        string json = await EvalAsync("-d", NfCorpusCollections.NfCorpus, "--retriever", "dense", "--exact", "--run-file", nf.TempFile("exact.trec"));
        Assert.InRange(Metric(json, "nDCG@10"), 0.3159 - 0.001, 0.3159 + 0.001);
    }
}
