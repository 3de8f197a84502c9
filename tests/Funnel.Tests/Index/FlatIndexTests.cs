using Funnel.Index;

namespace Funnel.Tests.Index;

public class FlatIndexTests
{
    [Theory]
    [InlineData(DistanceMetric.Cosine)]
    [InlineData(DistanceMetric.DotProduct)]
    [InlineData(DistanceMetric.L2)]
    public void MatchesBruteForceIdsAndScores(DistanceMetric metric)
    {
        var data = IndexTestData.Clustered(2000, 48, 10, seed: 1, normalize: false);
        using var index = new FlatIndex(48, metric);
        index.AddBatch(IndexTestData.Records(data));
        var queries = IndexTestData.Clustered(20, 48, 10, seed: 2, normalize: false);
        foreach (var q in queries)
        {
            var hits = index.Search(q, 10);
            Assert.Equal(IndexTestData.BruteForce(data, q, 10, metric), hits.Select(h => h.Id));
            foreach (var h in hits) Assert.Equal(IndexTestData.Score(metric, q, data[h.Id]), h.Score, 1e-4);
        }
    }

    [Fact]
    public void ParallelScanAgreesWithSingleThread()
    {
        var data = IndexTestData.Clustered(70_000, 16, 20, seed: 3);
        using var parallel = new FlatIndex(16, DistanceMetric.DotProduct, maxThreads: 2);
        parallel.AddBatch(IndexTestData.Records(data));
        var q = data[123];
        var batch = parallel.SearchBatch([q], 25)[0];
        Assert.Equal(IndexTestData.BruteForce(data, q, 25, DistanceMetric.DotProduct), parallel.Search(q, 25).Select(h => h.Id));
        Assert.Equal(batch, parallel.Search(q, 25));
    }

    [Fact]
    public void UpsertReplacesRemoveForgetsAndSlotsAreReused()
    {
        using var index = new FlatIndex(2, DistanceMetric.L2);
        index.Upsert(1, [0, 0]);
        index.Upsert(2, [10, 0]);
        index.Upsert(1, [20, 0]);
        Assert.Equal(2, index.Count);
        Assert.Equal([20f, 0f], index.GetVector(1)!);
        var hits = index.Search([19, 0], 2);
        Assert.Equal([new VectorHit(1, -1), new VectorHit(2, -9)], hits);
        Assert.True(index.Remove(1));
        Assert.False(index.Remove(1));
        Assert.False(index.Contains(1));
        Assert.Equal([2L], index.Search([19, 0], 5).Select(h => h.Id));
        index.Upsert(3, [18, 0]);
        Assert.Equal(2, index.Memory.Slots);
        Assert.Equal([3L, 2L], index.Search([19, 0], 5).Select(h => h.Id));
    }

    [Fact]
    public void BadInputNamesTheProblem()
    {
        using var index = new FlatIndex(3);
        var e = Assert.Throws<ArgumentException>(() => index.Upsert(1, [1, 2]));
        Assert.Contains("3", e.Message);
        Assert.Throws<ArgumentException>(() => index.Upsert(1, [1, float.NaN, 2]));
        Assert.Throws<ArgumentOutOfRangeException>(() => index.Search([1, 2, 3], 0));
        Assert.Empty(index.Search([1, 2, 3], 3));
    }

    [Fact]
    public void FilterRestrictsToMatchingMetadata()
    {
        var data = IndexTestData.Clustered(500, 8, 4, seed: 4);
        using var index = new FlatIndex(8);
        index.AddBatch(IndexTestData.Records(data, i => new Dictionary<string, string> { ["parity"] = (i % 2).ToString() }));
        var hits = index.Search(data[0], 10, VectorFilter.MetadataEquals("parity", "1"));
        Assert.Equal(IndexTestData.BruteForce(data, data[0], 10, DistanceMetric.Cosine, id => id % 2 == 1), hits.Select(h => h.Id));
        Assert.Equal("1", index.GetMetadata(hits[0].Id)!["parity"]);
    }

    [Fact]
    public void SaveOpenLoadRoundTrip()
    {
        var data = IndexTestData.Clustered(3000, 24, 8, seed: 5);
        string path = IndexTestData.TempFile("flat.fvx");
        try
        {
            using var index = new FlatIndex(24, DistanceMetric.Cosine, VectorQuantization.Int8);
            index.AddBatch(IndexTestData.Records(data, i => i % 3 == 0 ? new Dictionary<string, string> { ["k"] = $"v{i}" } : null));
            index.Remove(7);
            index.Save(path);
            using var opened = FlatIndex.Open(path);
            using var loaded = (FlatIndex)VectorIndex.Load(path);
            Assert.Equal(index.Count, opened.Count);
            Assert.Equal(VectorQuantization.Int8, opened.Quantization);
            Assert.Equal("v9", opened.GetMetadata(9)!["k"]);
            foreach (var q in data.Take(20))
            {
                Assert.Equal(index.Search(q, 10), opened.Search(q, 10));
                Assert.Equal(index.Search(q, 10), loaded.Search(q, 10));
            }
        }
        finally { File.Delete(path); }
    }
}
