using System.Text.Json;
using Funnel.Index;

namespace Funnel.Tests.Index;

public class HnswIndexTests
{
    private const int Dim = 64;
    private static readonly float[][] All = IndexTestData.Clustered(6100, Dim, 50, seed: 11);
    private static readonly float[][] Data = All[..6000];
    private static readonly float[][] Queries = All[6000..];
    private static readonly long[][] Truth = Queries.Select(q => IndexTestData.BruteForce(Data, q, 10, DistanceMetric.Cosine)).ToArray();

    private static HnswIndex Build(float[][] data, HnswOptions? options = null, DistanceMetric metric = DistanceMetric.Cosine)
    {
        var index = new HnswIndex(data[0].Length, metric, options ?? new HnswOptions { M = 12, EfConstruction = 100, EfSearch = 64 });
        index.AddBatch(IndexTestData.Records(data));
        return index;
    }

    [Fact]
    public void RecallAgainstBruteForce()
    {
        using var index = Build(Data);
        var found = index.SearchBatch(Queries, 10);
        Assert.True(IndexTestData.Recall(Truth, found) >= 0.95, $"recall {IndexTestData.Recall(Truth, found):F3}");
        // Scores are exact cosine similarities of the returned vectors, best first, no duplicates.
        foreach (var (q, hits) in Queries.Zip(found))
        {
            Assert.Equal(hits.Count, hits.Select(h => h.Id).Distinct().Count());
            Assert.Equal(hits.OrderByDescending(h => h.Score).ToArray(), hits.ToArray());
            foreach (var h in hits) Assert.Equal(IndexTestData.Score(DistanceMetric.Cosine, q, Data[h.Id]), h.Score, 1e-4);
        }
    }

    [Fact]
    public void APerSearchEfOverridesTheDefaultWithoutChangingIt()
    {
        using var index = Build(Data, new HnswOptions { M = 12, EfConstruction = 100, EfSearch = 10 });
        var byDefault = Queries.Select(q => index.Search(q, 10)).ToList();
        var wide = Queries.Select(q => index.Search(q, 10, efSearch: 300)).ToList();
        double narrowRecall = IndexTestData.Recall(Truth, byDefault), wideRecall = IndexTestData.Recall(Truth, wide);
        Assert.True(wideRecall >= 0.99, $"recall at ef 300: {wideRecall:F3}");
        Assert.True(narrowRecall < wideRecall - 0.02, $"recall at ef 10 ({narrowRecall:F3}) should be clearly below ef 300's ({wideRecall:F3})");
        Assert.Equal(10, index.EfSearch);
        // 0 means the default, so it reproduces the default search exactly.
        Assert.Equal(byDefault.Select(h => h.Select(x => x.Id)), Queries.Select(q => index.Search(q, 10, efSearch: 0).Select(x => x.Id)));
        Assert.Throws<ArgumentOutOfRangeException>(() => index.Search(Queries[0], 10, efSearch: -1));
    }

    [Fact]
    public void NearDuplicatesStayReachable()
    {
        // Embeddings of a random-weight model, or a corpus full of boilerplate, crowd into a narrow cone with exact
        // repeats. The neighbour heuristic then prunes back links hard; no node may end up without a way in.
        var rng = new Random(3);
        var axis = IndexTestData.Clustered(1, 32, 1, seed: 4)[0];
        var data = new float[1500][];
        for (int i = 0; i < data.Length; i++)
        {
            if (i % 10 == 9) { data[i] = data[i - 1]; continue; }
            data[i] = [.. axis.Select(x => x + 0.02f * (float)(rng.NextDouble() - 0.5))];
        }
        for (int round = 0; round < 4; round++)
        {
            using var index = Build(data);
            Assert.Equal(0, index.InLinkCountErrors());
            Assert.Equal(0, index.UnreachableCount());
            var found = index.SearchBatch(data, 1);
            for (int i = 0; i < data.Length; i++)
                Assert.True(found[i][0].Score > 0.99999f, $"round {round}: vector {i} found only {found[i][0].Score} (id {found[i][0].Id})");
        }
    }

    [Fact]
    public void FioriVectorsMatchShippedExactTop10()
    {
        string dir = TestPaths.SharedDataset("fiori-docs-embeddings-minilm");
        var bytes = File.ReadAllBytes(Path.Combine(dir, "embeddings.bin"));
        int n = bytes.Length / (384 * 4);
        var vectors = Enumerable.Range(0, n).Select(i => new float[384]).ToArray();
        for (int i = 0; i < n; i++) Buffer.BlockCopy(bytes, i * 384 * 4, vectors[i], 0, 384 * 4);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "knn_exact_cosine_top10.json")));
        var truth = doc.RootElement.GetProperty("results").EnumerateArray()
            .Select(r => r.GetProperty("neighbors").EnumerateArray().Select(x => x.GetInt64()).ToArray()).ToArray();
        Assert.Equal([2L, 4, 518, 220, 218, 224, 229, 68, 210, 66], truth[0]);

        using var index = Build(vectors, new HnswOptions { M = 16, EfConstruction = 200, EfSearch = 64 });
        // k = 11 because the query itself is in the index; drop it as the ground truth does.
        var found = index.SearchBatch(vectors, 11).Select((hits, i) => (IReadOnlyList<VectorHit>)hits.Where(h => h.Id != i).Take(10).ToList()).ToList();
        double recall = IndexTestData.Recall(truth, found);
        Assert.True(recall >= 0.98, $"fiori recall@10 {recall:F4}");
    }
}
