using System.Security.Cryptography;
using Funnel.Index;

namespace Funnel.Tests.Index;

public class IndexPersistenceTests
{
    private static readonly float[][] All = IndexTestData.Clustered(2050, 24, 20, seed: 31);
    private static readonly float[][] Data = All[..2000];
    private static readonly float[][] Queries = All[2000..];

    private static HnswIndex Build(VectorQuantization quantization = VectorQuantization.None)
    {
        var index = new HnswIndex(24, DistanceMetric.Cosine, new HnswOptions { M = 8, EfConstruction = 64, EfSearch = 32, Quantization = quantization });
        index.AddBatch(IndexTestData.Records(Data, i => i % 4 == 0 ? new Dictionary<string, string> { ["lang"] = i % 8 == 0 ? "en" : "de" } : null), maxThreads: 1);
        for (int i = 0; i < 100; i++) index.Remove(i * 7);
        return index;
    }

    [Theory]
    [InlineData(VectorQuantization.None)]
    [InlineData(VectorQuantization.Int8)]
    public void OpenAndLoadAnswerExactlyLikeTheSavedIndex(VectorQuantization quantization)
    {
        string path = IndexTestData.TempFile("hnsw.fvx");
        try
        {
            using var index = Build(quantization);
            index.Save(path);
            Assert.False(Directory.EnumerateFiles(Path.GetDirectoryName(path)!, $".{Path.GetFileName(path)}*.tmp").Any());
            using var opened = HnswIndex.Open(path);
            using var loaded = VectorIndex.Load(path);
            var filter = VectorFilter.MetadataEquals("lang", "en");
            foreach (var candidate in new VectorIndex[] { opened, loaded })
            {
                Assert.Equal(index.Count, candidate.Count);
                Assert.Equal(index.GetIds().Order(), candidate.GetIds().Order());
                Assert.Equal(index.Memory.Slots, candidate.Memory.Slots);
                for (int q = 0; q < Queries.Length; q++)
                {
                    Assert.Equal(index.Search(Queries[q], 10), candidate.Search(Queries[q], 10));
                    Assert.Equal(index.Search(Queries[q], 10, filter), candidate.Search(Queries[q], 10, filter));
                }
            }
            Assert.Equal(32, opened.EfSearch);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void OpenedIndexIsWritableAndNeverChangesTheFile()
    {
        string path = IndexTestData.TempFile("cow.fvx"), copy = IndexTestData.TempFile("cow2.fvx");
        try
        {
            using (var index = Build()) index.Save(path);
            byte[] before = SHA256.HashData(File.ReadAllBytes(path));
            using (var opened = HnswIndex.Open(path))
            {
                for (int i = 0; i < 50; i++) opened.Upsert(10_000 + i, Queries[i]);
                for (int i = 1; i < 200; i += 2) opened.Remove(i);
                for (int i = 0; i < 50; i++) Assert.Equal(10_000 + i, opened.Search(Queries[i], 1)[0].Id);
                opened.Save(copy);
                // Saving over the file it is mapped from is allowed too: the rename leaves the mapping intact.
                Assert.Equal(before, SHA256.HashData(File.ReadAllBytes(path)));
                using var reopened = HnswIndex.Open(copy);
                Assert.Equal(opened.Count, reopened.Count);
                for (int i = 0; i < Queries.Length; i++) Assert.Equal(opened.Search(Queries[i], 10), reopened.Search(Queries[i], 10));
                opened.Save(path);
                Assert.Equal(opened.Search(Queries[0], 10), opened.Search(Queries[0], 10));
            }
            using var final = HnswIndex.Open(path);
            Assert.True(final.Contains(10_049));
        }
        finally { File.Delete(path); File.Delete(copy); }
    }

    [Fact]
    public void EmptyIndexRoundTrips()
    {
        string path = IndexTestData.TempFile("empty.fvx");
        try
        {
            using (var index = new HnswIndex(5)) index.Save(path);
            using var opened = HnswIndex.Open(path);
            Assert.Equal(0, opened.Count);
            Assert.Empty(opened.Search([1, 0, 0, 0, 0], 3));
            opened.Upsert(1, [1, 0, 0, 0, 0]);
            Assert.Equal(1, opened.Search([1, 0, 0, 0, 0], 3).Single().Id);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void TruncatedOrFlippedFilesAreRejectedWithTheFileName()
    {
        string path = IndexTestData.TempFile("good.fvx"), bad = IndexTestData.TempFile("bad.fvx");
        try
        {
            using (var index = new HnswIndex(8, DistanceMetric.Cosine, new HnswOptions { M = 4, EfConstruction = 16 }))
            {
                index.AddBatch(IndexTestData.Records(IndexTestData.Clustered(200, 8, 4, seed: 3), i => new Dictionary<string, string> { ["i"] = i.ToString() }), maxThreads: 1);
                index.Save(path);
            }
            byte[] good = File.ReadAllBytes(path);
            var rng = new Random(17);
            for (int trial = 0; trial < 150; trial++)
            {
                byte[] damaged;
                if (trial % 2 == 0) damaged = good[..rng.Next(good.Length)];
                else
                {
                    damaged = (byte[])good.Clone();
                    damaged[rng.Next(damaged.Length)] ^= (byte)rng.Next(1, 256);
                }
                File.WriteAllBytes(bad, damaged);
                var e = Assert.Throws<InvalidDataException>(() => HnswIndex.Open(bad).Dispose());
                Assert.Contains(bad, e.Message);
                Assert.Throws<InvalidDataException>(() => VectorIndex.Load(bad).Dispose());
            }
            Assert.Throws<FileNotFoundException>(() => HnswIndex.Open(bad + ".missing"));
            var wrongKind = Assert.Throws<InvalidDataException>(() => FlatIndex.Open(path));
            Assert.Contains("Hnsw", wrongKind.Message);
        }
        finally { File.Delete(path); File.Delete(bad); }
    }
}
