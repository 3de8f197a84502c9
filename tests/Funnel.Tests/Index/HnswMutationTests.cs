using Funnel.Index;

namespace Funnel.Tests.Index;

/// <summary>Deletes, upserts, slot reuse, filters and quantization on seeded clustered data.</summary>
public class HnswMutationTests
{
    private const int Dim = 32;
    private static readonly float[][] All = IndexTestData.Clustered(5200, Dim, 40, seed: 21);
    private static readonly float[][] Data = All[..5000];
    private static readonly float[][] Queries = All[5000..];
    private static readonly HnswOptions Options = new() { M = 12, EfConstruction = 100, EfSearch = 48 };

    private static HnswIndex Build(IEnumerable<(long Id, float[] Vector)> items, HnswOptions? options = null)
    {
        var index = new HnswIndex(Dim, DistanceMetric.Cosine, options ?? Options);
        index.AddBatch(items.Select(x => new VectorRecord(x.Id, x.Vector)).ToList(), maxThreads: 1);
        return index;
    }

    private static double Recall(VectorIndex index, float[]?[] data, Func<long, bool>? keep = null, VectorFilter? filter = null)
    {
        var dense = data.Select(v => v!).ToArray();
        var truth = Queries.Select(q => IndexTestData.BruteForce(dense, q, 10, DistanceMetric.Cosine, keep)).ToList();
        return IndexTestData.Recall(truth, index.SearchBatch(Queries, 10, filter));
    }

    [Fact]
    public void RecallAfterDeleting30PercentStaysWithinTwoPointsOfAFreshBuild()
    {
        using var index = Build(Data.Select((v, i) => ((long)i, v)));
        var rng = new Random(5);
        var removed = Enumerable.Range(0, Data.Length).OrderBy(_ => rng.Next()).Take(Data.Length * 3 / 10).ToHashSet();
        foreach (int id in removed) Assert.True(index.Remove(id));
        Assert.Equal(Data.Length - removed.Count, index.Count);
        var remaining = Data.Select((v, i) => removed.Contains(i) ? null : v).ToArray();

        double afterDelete = Recall(index, remaining, id => !removed.Contains((int)id));
        using var fresh = Build(Data.Select((v, i) => ((long)i, v)).Where(x => !removed.Contains((int)x.Item1)));
        double freshRecall = Recall(fresh, remaining, id => !removed.Contains((int)id));
        Assert.True(afterDelete >= freshRecall - 0.02, $"after delete {afterDelete:F3}, fresh {freshRecall:F3}");
        foreach (var hits in index.SearchBatch(Queries, 10)) Assert.DoesNotContain(hits, h => removed.Contains((int)h.Id));
    }

    [Fact]
    public void InsertsReuseRemovedSlotsAndKeepRecall()
    {
        using var index = Build(Data[..3500].Select((v, i) => ((long)i, v)));
        for (int i = 0; i < 1500; i++) Assert.True(index.Remove(i));
        Assert.Equal(1500, index.TombstoneCount);
        foreach (var (v, i) in Data[3500..].Select((v, i) => (v, i + 3500))) index.Upsert(i, v);
        Assert.Equal(0, index.TombstoneCount);
        Assert.Equal(3500, index.Memory.Slots);
        var current = Data.Select((v, i) => i < 1500 ? null : v).ToArray();
        double recall = Recall(index, current, id => id >= 1500);
        Assert.True(recall >= 0.93, $"recall after slot reuse {recall:F3}");
    }

    [Fact]
    public void InLinkCountsStayExactThroughParallelUpsertsRemovalsReuseAndReopen()
    {
        // Pruning keeps every node's last layer-0 in-link by these counts, so they must match the lists exactly
        // whatever the writes and their interleaving, and after a reopen (where they are recounted).
        using var index = new HnswIndex(Dim, DistanceMetric.Cosine, Options);
        index.AddBatch(Data[..3000].Select((v, i) => new VectorRecord(i, v)).ToList(), maxThreads: 4);
        Assert.Equal(0, index.InLinkCountErrors());
        var rng = new Random(8);
        Parallel.For(0, 2000, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
        {
            int id;
            lock (rng) id = rng.Next(3000);
            if (i % 3 == 0) index.Remove(id);
            else index.Upsert(i % 3 == 1 ? id : 3000 + i, Data[(id + i) % Data.Length]);
        });
        Assert.Equal(0, index.InLinkCountErrors());
        Assert.Equal(0, index.UnreachableCount());
        string path = Path.Combine(Path.GetTempPath(), $"funnel-inlinks-{Guid.NewGuid():N}.idx");
        try
        {
            index.Save(path);
            using var reopened = HnswIndex.Open(path);
            Assert.Equal(0, reopened.InLinkCountErrors());
            reopened.AddBatch(Data[3000..].Select((v, i) => new VectorRecord(10_000 + i, v)).ToList(), maxThreads: 4);
            Assert.Equal(0, reopened.InLinkCountErrors());
            Assert.Equal(0, reopened.UnreachableCount());
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void UpsertOfExistingIdsReplacesVectorsAndRelinks()
    {
        using var index = Build(Data.Select((v, i) => ((long)i, v)));
        // Move a fifth of the ids onto other points' vectors (perturbed so that ties are impossible).
        var rng = new Random(9);
        var current = (float[][])Data.Clone();
        for (int i = 0; i < Data.Length; i += 5)
        {
            var v = (float[])Data[rng.Next(Data.Length)].Clone();
            v[0] += 0.01f;
            current[i] = v;
            index.Upsert(i, v);
        }
        Assert.Equal(Data.Length, index.Count);
        Assert.Equal(Data.Length, index.Memory.Slots);
        double recall = Recall(index, current);
        Assert.True(recall >= 0.93, $"recall after upserts {recall:F3}");
        var stored = index.GetVector(5)!;
        Assert.Equal(1.0, IndexTestData.Score(DistanceMetric.Cosine, stored, current[5]), 1e-5);
    }

    [Theory]
    [InlineData(2, 0.95)]
    [InlineData(10, 0.95)]
    [InlineData(100, 1.0)]
    public void FilteredSearchKeepsRecall(int modulus, double threshold)
    {
        using var index = new HnswIndex(Dim, DistanceMetric.Cosine, Options);
        index.AddBatch(IndexTestData.Records(Data, i => new Dictionary<string, string> { ["bucket"] = (i % modulus).ToString() }), maxThreads: 1);
        var filter = VectorFilter.MetadataEquals("bucket", "0");
        double recall = Recall(index, Data, id => id % modulus == 0, filter);
        Assert.True(recall >= threshold, $"1/{modulus} selectivity: recall {recall:F3}");
        double byId = Recall(index, Data, id => id % modulus == 0, VectorFilter.Where(id => id % modulus == 0));
        Assert.True(byId >= threshold, $"1/{modulus} selectivity by id: recall {byId:F3}");
        foreach (var hits in index.SearchBatch(Queries, 10, filter)) Assert.All(hits, h => Assert.Equal(0, h.Id % modulus));
    }

    [Theory]
    [InlineData(true, 0.95)]
    [InlineData(false, 0.85)]
    public void Int8StorageKeepsRecall(bool keepFullPrecision, double threshold)
    {
        var options = Options with { Quantization = VectorQuantization.Int8, KeepFullPrecision = keepFullPrecision };
        using var index = Build(Data.Select((v, i) => ((long)i, v)), options);
        double recall = Recall(index, Data);
        Assert.True(recall >= threshold, $"int8 (full precision kept: {keepFullPrecision}) recall {recall:F3}");
        var memory = index.Memory;
        Assert.Equal(Data.Length * (long)(Dim + 8), memory.VectorBytes);
        Assert.Equal(keepFullPrecision ? Data.Length * 4L * Dim : 0, memory.FullPrecisionBytes);
        if (keepFullPrecision)
            foreach (var (q, hits) in Queries.Zip(index.SearchBatch(Queries, 10)))
                foreach (var h in hits) Assert.Equal(IndexTestData.Score(DistanceMetric.Cosine, q, Data[h.Id]), h.Score, 1e-4);
    }

    [Theory]
    [InlineData(DistanceMetric.L2)]
    [InlineData(DistanceMetric.DotProduct)]
    public void OtherMetricsScoreAsDocumented(DistanceMetric metric)
    {
        var data = IndexTestData.Clustered(2000, 16, 20, seed: 4, normalize: false);
        using var index = new HnswIndex(16, metric, Options);
        index.AddBatch(IndexTestData.Records(data));
        var queries = data[..50];
        var truth = queries.Select(q => IndexTestData.BruteForce(data, q, 10, metric)).ToList();
        var found = index.SearchBatch(queries, 10);
        Assert.True(IndexTestData.Recall(truth, found) >= 0.9, $"{metric} recall {IndexTestData.Recall(truth, found):F3}");
        foreach (var (q, hits) in queries.Zip(found))
            foreach (var h in hits) Assert.Equal(IndexTestData.Score(metric, q, data[h.Id]), h.Score, 1e-3);
    }
}
